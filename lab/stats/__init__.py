"""The statistics a verdict rests on, on plain numbers (numpy and scipy; no Keras, no MLflow):
paired differences with their intervals and robustness checks (`paired`), Holm's adjustment
(`holm`), the finite test set's sampling noise (`testset`) and how many seeds a comparison
needs (`seeds`). `lab.verdicts.ablation` turns a sweep's rows into verdicts with them, and
`bench/verdict_calibration.py` measures how often those verdicts are wrong."""
