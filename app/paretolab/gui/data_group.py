"""What variants are measured with: the data (built-in, a data file, an image or audio folder and
how its images become tensors) and the device."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLineEdit, QWidget

DATASETS = {"digits (built-in sample data)": "digits", "random inputs (fidelity only)": "random:64"}
CHOOSE_FOLDER = "Image or audio folder…"
CHOOSE_FILE = "Data file…"  # .npz/.npy tensors, or text for models with a tokenizer
# (random:64 is what core's default_data offers for models the digits do not fit)


class DataGroup(QGroupBox):
    folder_requested = Signal()  # the user chose "Image or audio folder…": the window asks which
    file_requested = Signal()  # the user chose "Data file…": the window asks which

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Measurement", parent)
        self.device_chosen = False  # the user picked a device: keep it across models
        self.data = QComboBox(self)
        self.data.addItems([*DATASETS, CHOOSE_FILE, CHOOSE_FOLDER])
        self.data.activated.connect(self._data_chosen)
        self._last_data = 0
        self.preprocess = QLineEdit(self)
        self.preprocess.setPlaceholderText("default: shaped to the model's input, ImageNet mean/std")
        self.preprocess.setToolTip("How images become tensors, e.g. size=224,resize=256,mean=0.5/0.5/0.5,std=0.5/0.5/0.5,"
                                   "channels=BGR,layout=NHWC,scale=255; the recipe used shows in each variant's notes")
        self.preprocess.setEnabled(False)
        self.device = QComboBox(self)
        self.device.addItem("cpu")
        self.device.setToolTip("Device the variant is measured on: only those available on this machine are listed")
        self.device.activated.connect(lambda _: setattr(self, "device_chosen", True))
        form = QFormLayout(self)
        form.addRow("Data", self.data)
        form.addRow("Preprocess", self.preprocess)
        form.addRow("Measure on", self.device)

    def set_data(self, spec: str, preprocess: str | None = None) -> None:
        """Offer `spec` first (the digits only fit models shaped like them; an image folder the
        model was last run with comes back with its recipe)."""
        label = next((label for label, s in DATASETS.items() if s == spec), None)
        if label is not None:
            self.data.setCurrentText(label)
            self._data_chosen(self.data.currentIndex())
        else:
            self.add_data(spec)
            self.preprocess.setText(preprocess or "")

    def set_devices(self, pairs: tuple[tuple[str, str], ...]) -> None:
        """The devices to offer: those any backend has on this machine; the one the user chose,
        else a CUDA GPU when there is one (the fastest), else the CPU."""
        names = list(dict.fromkeys(device for _, device in pairs)) or ["cpu"]
        chosen = self.device.currentText() if self.device_chosen else None
        self.device.clear()
        self.device.addItems(names)
        self.device.setCurrentText(chosen if chosen in names else "cuda" if "cuda" in names else names[0])

    def data_spec(self) -> str:
        """The built-in data's spec, or the image folder chosen (its item holds the path)."""
        return self.data.currentData() or DATASETS.get(self.data.currentText(), "digits")

    def preprocess_text(self) -> str | None:
        """The image preprocessing recipe typed, when the data is an image folder."""
        return self.preprocess.text().strip() or None if self._is_folder() else None

    def add_data(self, path: str) -> None:
        """Offer an image folder or a data file (before the "…" choices) and choose it."""
        index = self.data.findData(path)
        if index < 0:
            index = self.data.count() - 2
            kind = "file" if not Path(path).is_dir() else "audio" if any(Path(path).rglob("*.wav")) else "images"
            self.data.insertItem(index, f"{kind}: {path}", path)
        self.data.setCurrentIndex(index)
        self._data_chosen(index)

    def _data_chosen(self, index: int) -> None:
        chosen = self.data.itemText(index)
        if chosen in (CHOOSE_FOLDER, CHOOSE_FILE):
            self.data.setCurrentIndex(self._last_data)  # until one is chosen (cancel keeps the data as it was)
            (self.folder_requested if chosen == CHOOSE_FOLDER else self.file_requested).emit()
        else:
            self._last_data = index
        self.preprocess.setEnabled(self._is_folder())

    def _is_folder(self) -> bool:
        data = self.data.currentData()
        return bool(data) and Path(data).is_dir()
