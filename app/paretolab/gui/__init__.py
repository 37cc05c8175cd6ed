"""Widgets only: they call core through paretolab.jobs, never torch/onnx directly."""
