"""Measuring a model: data, runtimes, accuracy and fidelity, latency and per-layer time, the machine."""
