"""Pruning and factorization: structured and unstructured pruning, attention heads, low-rank."""
