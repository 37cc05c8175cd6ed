"""Making variants: a recipe applied and measured into an experiment, and sweeps over recipes."""
