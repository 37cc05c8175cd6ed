"""What ParetoLab tells about a model and its variants around the work: layer importance, size
prediction, why a variant is (not) faster, layer-by-layer comparison."""
