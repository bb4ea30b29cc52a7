"""What a comparison concludes: a sweep's rows -> verdicts and outcomes against the claim.

`rows` (the trial rows a comparison reads, and which of them count), `claims` (what each claim
is tested against, and in which direction), `ablation` (the paired differences, the verdicts and
their notes), `looks` (the sequential plan that may stop a sweep early). numpy, scipy and
statsmodels through `lab.stats`; no Keras, no MLflow.
"""
