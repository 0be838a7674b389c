"""Benchmarks of the model and the data path, on whatever JAX backend is current.

`model` (compiled inference and train steps; FLOPs from `flops`), `data` (log-mel, feature
extraction, the training input pipeline) with `dataset_build` (builds per worker count) on the
synthetic `clips`, and `training` (the input pipeline feeding the train step), each timed with
`timing`'s primitives; `report` writes the markdown tables and `cli` is the command line
(`python -m asf_jax.benchmark`, `asf-jax-benchmark`). `torch_slowfast` is the same architecture
in PyTorch, imported only by `--vs_torch`: asf_jax never needs torch.
"""
