"""Compressing a model: the technique registry, recipes and variants, and the techniques by family
(quantization/, pruning/, exits/, distill, graphopt) with what is told about them (insight/)."""
