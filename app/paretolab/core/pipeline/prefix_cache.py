"""Reuse the expensive PyTorch part of a recipe across the recipes of one sweep.

Recipes in a sweep share prefixes: "prune structured 50% → distill 5 epochs" comes back
with each quantization target after it. Pruning and distilling again gives the same student
(seeded), so the first one's ONNX export is kept and later recipes start from it — a sweep
trains each student once instead of once per target.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from paretolab.core.compress.variant import Recipe, Step
from paretolab.core.files import atomic_write, files_digest, write_json_atomic


def torch_prefix(recipe: Recipe) -> int:
    """How many leading steps edit the PyTorch module (structured pruning, distillation, low-rank)."""
    count = 0
    while count < len(recipe.steps) and recipe.steps[count].output() == "torch":
        count += 1
    return count


@dataclass(frozen=True)
class PrefixCache:
    folder: Path
    _digests: dict[tuple[Path, ...], str] = field(default_factory=dict, compare=False, repr=False)

    def key(self, model_files: list[Path], steps: tuple[Step, ...], data_name: str) -> str:
        files = tuple(model_files)
        if files not in self._digests:  # hash the model once per sweep, not once per trial
            self._digests[files] = files_digest(list(files))
        doc = {"model": self._digests[files], "steps": [s.to_dict() for s in steps], "data": data_name}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]

    def load(self, key: str) -> tuple[Path, list[dict]] | None:
        """The cached model file and the reports of the steps that made it, if present."""
        model, reports = self.folder / f"{key}.onnx", self.folder / f"{key}.json"
        if not (model.exists() and reports.exists()):
            return None
        try:
            return model, json.loads(reports.read_text())
        except (OSError, json.JSONDecodeError):  # a damaged entry is a miss, never an error
            return None

    def store(self, key: str, model: Path, reports: list[dict]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.folder / f"{key}.onnx", lambda tmp: shutil.copyfile(model, tmp))
        write_json_atomic(self.folder / f"{key}.json", reports)  # written last: its presence marks the entry whole
