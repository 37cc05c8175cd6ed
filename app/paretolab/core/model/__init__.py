"""The model: loading every format, the handle around a loaded model, its layer graph, MACs and layout."""
