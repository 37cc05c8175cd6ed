"""Quantization's settings: the one description of a quantization step that the ONNX Runtime,
OpenVINO and PyTorch quantizers, the recipe files, the CLI and the GUI all read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paretolab.core.settings import SettingsError

ORT_FORMATS = ("qop-u8s8", "qdq-u8s8", "qdq-s8s8", "qop-s8s8")
Precision = Literal["int8", "fp16", "bf16", "fastest", "dynamic-int8", "int8-weights", "int4-weights"]


@dataclass(frozen=True)
class QuantizeSettings:
    backend: Literal["ort", "openvino", "torch"] = "ort"
    # "fastest": every precision the runtime computes faster than FP32 here, measured; the fastest faithful kept
    precision: Precision = "int8"
    format: Literal["auto", "qop-u8s8", "qdq-u8s8", "qdq-s8s8", "qop-s8s8"] = "auto"  # ONNX Runtime int8 only
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"  # ONNX Runtime int8 only
    samples: int = 128  # calibration samples
    per_channel: bool = True
    keep_fp32: tuple[str, ...] = ()  # layer names left in floating point
    keep_sensitive: int = 0  # also leave the N layers with the worst int8 error (measured as SQNR) in FP32
    max_drop: float | None = None  # OpenVINO int8: accuracy-aware mode, largest top-1 drop allowed (0.01 = 1 point)
    min_agreement: float = 0.98  # "auto": a candidate must agree with FP32 on this share of top-1 predictions
    group_size: int = 128  # weight-only int4: weights share a scale in groups this long along the input (-1: per channel)
    ratio: float = 1.0  # OpenVINO weight-only int4: share of layers in int4, the rest int8
    # Quantization-aware training (OpenVINO int8, an editable PyTorch model, labelled data): "auto" fine-tunes
    # the fake-quantized model when calibrated int8 loses more than `qat_below` top-1 points on the validation
    # split and keeps whichever int8 model scores better there; "always" trains whatever the loss; "off" never
    qat: Literal["auto", "always", "off"] = "auto"
    qat_below: float = 0.5  # points of validation top-1
    qat_epochs: int = 2
    qat_lr: float = 1e-4  # small: the weights settle onto the int8 grid (1e-5 moved nothing in 2 demo epochs)
    seed: int = 0

    def check(self) -> None:
        if self.samples < 1:
            raise SettingsError(f"setting 'samples' must be at least 1, not {self.samples}")
        if self.precision == "dynamic-int8" and self.backend != "ort":
            raise SettingsError("dynamic int8 is an ONNX Runtime technique; use backend 'ort'")
        if self.backend == "torch" and self.precision not in ("fp16", "bf16", "fastest"):
            raise SettingsError(f"PyTorch precisions are fp16, bf16 and fastest, not '{self.precision}'; for "
                                f"{self.precision} use backend 'ort' or 'openvino'")
        if self.precision in ("bf16", "fastest") and self.backend == "ort":
            raise SettingsError(f"precision '{self.precision}' is offered through OpenVINO and PyTorch; use backend "
                                "'openvino' or 'torch'")
        if self.max_drop is not None and not (self.backend == "openvino" and self.precision == "int8"):
            raise SettingsError("setting 'max_drop' (accuracy-aware quantization) needs backend 'openvino' and precision 'int8'")
        if self.max_drop is not None and not 0 < self.max_drop < 1:
            raise SettingsError(f"setting 'max_drop' must be between 0 and 1 (0.01 = 1 point), not {self.max_drop}")
        if self.keep_sensitive < 0:
            raise SettingsError(f"setting 'keep_sensitive' must be 0 or more, not {self.keep_sensitive}")
        if self.keep_sensitive and self.precision != "int8":
            raise SettingsError("setting 'keep_sensitive' applies to int8 quantization")
        if not 0 <= self.min_agreement <= 1:
            raise SettingsError(f"setting 'min_agreement' must be between 0 and 1, not {self.min_agreement}")
        self._check_weight_only()
        self._check_qat()

    def _check_qat(self) -> None:
        if self.qat not in ("auto", "always", "off"):
            raise SettingsError(f"setting 'qat' must be auto, always or off, not {self.qat}")
        if not self.qat_below >= 0:
            raise SettingsError(f"setting 'qat_below' must be 0 points or more, not {self.qat_below}")
        if self.qat_epochs < 1:
            raise SettingsError(f"setting 'qat_epochs' must be at least 1, not {self.qat_epochs}")
        if not self.qat_lr > 0:
            raise SettingsError(f"setting 'qat_lr' must be positive, not {self.qat_lr}")
        if self.qat == "always" and not (self.backend == "openvino" and self.precision == "int8"):
            raise SettingsError("setting 'qat' always (quantization-aware training) needs backend 'openvino' and "
                                "precision 'int8'")

    def _check_weight_only(self) -> None:
        if self.group_size != -1 and (self.group_size < 16 or self.group_size & (self.group_size - 1)):
            raise SettingsError(f"setting 'group_size' must be a power of two from 16 up, or -1 for one scale per "
                                f"channel, not {self.group_size}")
        if not 0 < self.ratio <= 1:
            raise SettingsError(f"setting 'ratio' must be above 0 and at most 1, not {self.ratio}")
        if self.ratio < 1 and not (self.precision == "int4-weights" and self.backend == "openvino"):
            raise SettingsError("setting 'ratio' (a share of layers in int4, the rest int8) applies to OpenVINO "
                                "weight-only int4")
