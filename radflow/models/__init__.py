"""Network construction, checkpoints, fitting and prediction."""
