"""Compressing a model: the technique registry and techniques, recipes and variants, importance, prediction."""
