"""The model summary: file, format, inputs, outputs and totals."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from paretolab.core.units import si, size
from paretolab.jobs import LoadedModel


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
            "Outputs": "\n".join(str(t) for t in (handle.outputs or graph.outputs)),
            "Layers": f"{s['layers']:,}",
            "Parameters": f"{si(s['params'])} ({s['params']:,})",
            "MACs": macs,
            "Ops": ", ".join(f"{op} {n}" for op, n in list(s["op_counts"].items())[:10]),
            "Notes": "\n".join(graph.notes) or "—",
        }
        for name, text in values.items():
            self.labels[name].setText(text)
        self.labels["File"].setToolTip("\n".join(str(f) for f in handle.files))
