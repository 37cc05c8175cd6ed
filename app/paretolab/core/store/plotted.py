"""What the chart's y axis shows for a variant, and its name: the score it is chosen by for class
scores, else the worst output's measure for its kind, since one cosine hides dead scores beside
boxes. Here, not in the GUI, so the chart and anything else that plots agree."""

from __future__ import annotations

from paretolab.core.compress.variant import Variant
from paretolab.core.measure.output_kinds import MEASURES, worst_quality


def plotted_score(variant: Variant) -> tuple[float, str]:
    """The y value (0..1) and what it is ("" for the class-score measure the axis names). Other
    outputs: the worst output's measure for its kind (detection recall, exact strings, neighbours,
    SQNR on 0..40 dB), on the data the variant was measured on."""
    if variant.metric != "cosine":
        return variant.selection_score, ""
    value, text, _ = worst_quality(variant.fidelity)
    return (variant.selection_score, "") if value is None else (value, text)


def axis_measure(variant: Variant) -> str:
    """The y axis's name: the class-score measure, or "quality by output kind (detection recall, SQNR)"."""
    if variant.metric != "cosine":
        return variant.metric_label
    _, text, kinds = worst_quality(variant.fidelity)
    if not text:
        return variant.metric_label
    return f"quality by output kind ({', '.join(MEASURES[k] for k in kinds)})"
