"""What an early-exit model records about itself, for whoever measures or explains it.

The file carries its exits (after which layer, at which confidence threshold) as metadata and
a second output, `exit`, with the exit each sample left by (the number of exits: the end), so
every number about its exits can be recomputed from the file alone.
"""

from __future__ import annotations

import json
from typing import Any

EXIT_OUTPUT = "exit"
EARLY_EXIT_KEY = "paretolab.early_exit"


def early_exit_info(model: Any) -> dict | None:
    """The exits an early-exit ONNX model (a ModelProto) records, or None for any other model."""
    for prop in getattr(model, "metadata_props", ()):
        if prop.key == EARLY_EXIT_KEY:
            return json.loads(prop.value)
    return None


def exit_names(info: dict) -> list[str]:
    """The exits' names for people: "after <layer>" for each, then "the end"."""
    return [f"after {e.get('label') or e['after']}" for e in info["exits"]] + ["the end"]


def average_macs(info: dict, exits: list[dict]) -> int | None:
    """The MACs an early-exit model spends per sample on average, from where the samples left
    (evaluate's `exits`) and what reaching each exit costs (recorded when the model was built)."""
    costs = info.get("macs") or []
    if len(costs) != len(exits) or not exits:
        return None
    return round(sum(e["share"] * c for e, c in zip(exits, costs)))


def exits_text(exits: list[dict]) -> str:
    """"after layers.1: 73.1% (top-1 99.2%) · the end: 26.9% (93.1%)": where inputs left, how right they were."""
    parts = []
    for i, e in enumerate(exits):
        right = f" ({'top-1 ' if i == 0 else ''}{e['top1']:.1%})" if e.get("top1") is not None else ""
        parts.append(f"{e['exit']}: {e['share']:.1%}{right}")
    return " · ".join(parts)
