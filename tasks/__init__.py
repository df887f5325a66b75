"""DVC stages: one module per stage, each `run(params, inputs..., out) -> Result` plus `main()`."""
