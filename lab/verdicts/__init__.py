"""What a comparison concludes: a sweep's rows -> verdicts and outcomes against the claim
(`ablation`), and the sequential looks that may stop it early (`looks`). numpy, scipy, statsmodels
(through `lab.stats`), no Keras, no MLflow."""
