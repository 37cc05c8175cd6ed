"""Quantization: ONNX Runtime, OpenVINO/NNCF and PyTorch precisions, weight-only forms, and the
contest that keeps the fastest faithful form."""
