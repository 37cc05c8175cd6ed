"""The variants table: names sort as people count, collapsed variants stand out."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from paretolab.core.compress.variant import Recipe, Variant
from paretolab.gui.variants_table import VariantsTable

PRUNE = Recipe.from_dict({"steps": [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}}]})


def _variant(name: str, top1: float) -> Variant:
    metrics = {"baseline": {"top1": 0.99, "latency_ms": 1.0, "size_bytes": 4000, "backend": "ort"},
               "variant": {"top1": top1, "latency_ms": 0.5, "size_bytes": 1000, "backend": "ort"}, "speedup": 2.0}
    return Variant(name, PRUNE, Path(f"/nowhere/{name}.onnx"), "model.onnx", metrics)


def test_names_sort_naturally_and_a_collapsed_variant_is_flagged(qtbot):
    table = VariantsTable()
    qtbot.addWidget(table)
    for name in ("v10", "v2", "v1", "v9"):
        table.add(_variant(name, 0.98 if name != "v9" else 0.23))
    table.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    names = [table.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 2) for r in range(4)]
    assert names == ["v1", "v2", "v9", "v10"]
    shown = {table.proxy.index(r, 0).data(): table.proxy.index(r, 0).data(Qt.ItemDataRole.ToolTipRole) for r in range(4)}
    assert shown["⚠ v9"].endswith("Warning: top-1 fell from 99.0% to 23.0%: this variant has collapsed; "
                                  "add distillation from the original; prune less than 50%")
    assert "Warning" not in shown["v2"]
