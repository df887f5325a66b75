"""Prefect flows over the DVC stages: `retrain` (flows/retrain.py). The only package that imports Prefect."""
