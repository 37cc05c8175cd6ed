"""The model summary: file, format, inputs, outputs and totals."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from paretolab.core.tensors import TensorSpec, format_shape
from paretolab.core.units import si, size

if TYPE_CHECKING:
    from paretolab.core.pipeline.session import LoadedModel

_DIM_NAME = re.compile(r"^[A-Za-z_][\w.]*$")  # "batch", "height": a name; anything else is a formula


class SummaryPanel(QWidget):
    FIELDS = ("File", "Format", "Size on disk", "Inputs", "Outputs", "Layers", "Parameters", "MACs", "Ops", "Notes")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: dict[str, QLabel] = {}
        form = QFormLayout(self)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for name in self.FIELDS:
            label = QLabel("—", self)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.labels[name] = label
            form.addRow(f"{name}:", label)

    def show_model(self, loaded: LoadedModel | None) -> None:
        if loaded is None:
            for label in self.labels.values():
                label.setText("—")
            return
        handle, graph = loaded.handle, loaded.graph
        s = graph.summary()
        macs = si(s["macs"]) + ("" if s["macs_complete"] else " (incomplete)")
        values = {
            "File": str(handle.path),
            "Format": handle.format,
            "Size on disk": size(handle.size_bytes),
            "Inputs": "\n".join(str(t) for t in handle.inputs),
            "Layers": f"{s['layers']:,}",
            "Parameters": f"{si(s['params'])} ({s['params']:,})",
            "MACs": macs,
            "Ops": ", ".join(f"{op} {n}" for op, n in list(s["op_counts"].items())[:10]),
            "Notes": "\n".join(graph.notes) or "—",
        }
        for name, text in values.items():
            self.labels[name].setText(text)
        self.labels["File"].setToolTip("\n".join(str(f) for f in handle.files))
        outputs = [_short(t) for t in resolved_outputs(handle.outputs, graph.outputs)]
        self.labels["Outputs"].setText("\n".join(text for text, _ in outputs))
        self.labels["Outputs"].setToolTip("\n".join(tip for _, tip in outputs if tip))


def resolved_outputs(declared: Sequence[TensorSpec], inferred: Sequence[TensorSpec]) -> list[TensorSpec]:
    """The outputs as the file declares them, each size resolved where shape inference with the
    input shapes in use found it: a detector's `floor(height/8)*floor(width/8) + ...` becomes 2100."""
    found = {t.name: t for t in inferred}
    outputs = []
    for spec in declared or inferred:
        other = found.get(spec.name)
        if other is not None and len(other.shape) == len(spec.shape):
            spec = TensorSpec(spec.name, tuple(o if isinstance(o, int) and o > 0 else d for d, o in zip(spec.shape, other.shape)),
                              spec.dtype)
        outputs.append(spec)
    return outputs


def _short(spec: TensorSpec) -> tuple[str, str]:
    """"output0 [1, 22, ?] float32" and the formulas behind each "?" for the tooltip: a size that
    shape inference wrote as a formula of the free input sizes reads as "?" until they are set."""
    formulas = {i: d for i, d in enumerate(spec.shape) if isinstance(d, str) and d and not _DIM_NAME.match(d)}
    shape = format_shape(tuple("?" if i in formulas else d for i, d in enumerate(spec.shape)))
    tip = "; ".join(f"{spec.name} size {i}: {formula.replace(' ', '')}" for i, formula in formulas.items())
    return f"{spec.name} {shape} {spec.dtype}", tip
