"""What a technique sees while a recipe runs, so the pipeline never needs to know one.

The current model is a file (a ModelHandle) or, while steps that edit PyTorch run, an eager
module; `file()` exports that module when a file step needs one. Each technique's `apply`
takes a StepContext, does its work in the private work folder, sets the new model and adds
its report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paretolab.core.errors import ParetoLabError
from paretolab.core.measure.data import random_inputs
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.runtimes import check_ort_loads
from paretolab.core.model.eager import eager_module, torch_edits_unavailable
from paretolab.core.model.handle import ModelHandle
from paretolab.core.model.torch_artifact import save_torch_artifact
from paretolab.core.model.torch_onnx import export_to_onnx
from paretolab.core.progress import Progress
from paretolab.core.tensors import free_axes


@dataclass
class StepContext:
    original: ModelHandle
    data: DataPlan
    work: Path
    threads: int | None
    progress: Progress
    handle: ModelHandle  # the current model as a file (stale while `module` is set)
    module: Any = None  # the eager nn.Module while torch steps edit it
    reports: list[dict] = field(default_factory=list)
    cancelled: bool = False  # a cancelled distillation keeps its best student and ends the recipe
    device: str = "cpu"  # where the variant will be measured: steps that time candidates time them there

    def torch_module(self, what: str) -> Any:
        """The module to edit: the one earlier steps edited, or a fresh eager copy of the file."""
        return self.module if self.module is not None else eager_module(self.handle, what)

    def can_edit_torch(self) -> bool:
        return self.module is not None or torch_edits_unavailable(self.handle) is None

    def set_module(self, module: Any) -> None:
        self.module = module

    def set_file(self, path: Path) -> None:
        if path.suffix == ".onnx":
            check_ort_loads(path)
        self.handle, self.module = self.original.like(path), None  # the user's input shapes carry over

    def file(self, index: int) -> ModelHandle:
        """The current model as a file: the edited torch module is exported first when there is one."""
        if self.module is not None:
            out = self.work / f"step{index}-torch.onnx"
            # Named as the original's (a pickle records none: then as its layer graph names them, "output_0"...).
            outputs = [s.name for s in self.original.outputs or self.original.layer_graph().outputs] or None
            inputs = self.original.inputs
            export_to_onnx(self.module, self.examples(), out, [s.name for s in inputs], output_names=outputs,
                           dynamic_axes=free_axes(inputs, self.original.source.inputs))
            self.set_file(out)
        return self.handle

    def torch_file(self, stem: Path) -> Path:
        """The edited module as a PyTorch file at `stem` + .pt2 (or .pt)."""
        if self.module is None:
            raise ParetoLabError("the recipe left no edited PyTorch model to save as a PyTorch file")
        return self.torch_file_of(self.module, stem)

    def torch_file_of(self, module: Any, stem: Path) -> Path:
        """`module` as a PyTorch file at `stem` + .pt2 (or .pt), its inputs free as the original's are."""
        inputs = self.original.inputs
        return save_torch_artifact(module, self.examples(), inputs, free_axes(inputs, self.original.source.inputs), stem)

    def out(self, index: int, suffix: str = ".onnx") -> Path:
        return self.work / f"step{index}{suffix}"

    def examples(self) -> tuple:
        import torch

        arrays = random_inputs(self.original.inputs, count=1).load(np.arange(1))
        return tuple(torch.from_numpy(a) for a in arrays)

    def report(self, index: int, fields: dict) -> None:
        self.reports.append({"step": index, **fields})
