"""`task=search`: keras-tuner sweeps over the axes of `search.space`, tracked in MLflow.

run.py (`search(cfg)`: a sweep from start to report), sweep.py (the tuner, the parent and child
runs, resume), space.py (YAML axes as keras-tuner hyperparameters), ablation.py and report.py
(verdicts, trials.csv, summary.md), plots.py, distributed.py and launcher.py (keras-tuner's
chief and workers), kt_compat.py (every use of keras-tuner's private API). Importing the package
loads none of them.
"""
