"""Compressing a model: the technique registry and techniques, importance, prediction, the recipe pipeline."""
