"""Evaluation of a binary classifier: metrics with bootstrap CIs, operating point, calibration,
subgroups, robustness, Grad-CAM, plots and the HTML report."""
