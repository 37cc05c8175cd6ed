"""The experiment of one model: every variant made from it, kept on disk.

One folder per model file content (in the user's data folder, or one the user chooses).
Each variant is its model file plus NAME.recipe.json and NAME.metrics.json; the metrics file
is written atomically, last, so a variant exists exactly when its metrics file does. A
process killed mid-job leaves at most a model file without metrics, which the next open
removes: nothing but that job is lost, and nothing half-written is ever shown.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from filelock import FileLock

from paretolab.core.compress.variant import Recipe, Variant
from paretolab.core.errors import ParetoLabError
from paretolab.core.files import files_digest
from paretolab.core.model.handle import ModelHandle

log = logging.getLogger(__name__)
_MODEL_SUFFIXES = (".onnx", ".xml", ".bin")


def default_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("paretolab")) / "experiments"


def model_digest(handle: ModelHandle) -> str:
    return files_digest(handle.files)


class Experiment:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.skipped: list[str] = []  # files that could not be read, with why

    @classmethod
    def for_model(cls, handle: ModelHandle, root: Path | None = None) -> Experiment:
        return cls((root or default_root()) / f"{handle.path.stem}-{model_digest(handle)[:12]}")

    def variants(self) -> list[Variant]:
        """Every finished variant, oldest first; removes what a killed job left behind."""
        self.skipped = []
        if not self.folder.exists():
            return []
        found = []
        for metrics in sorted(self.folder.glob("*.metrics.json")):
            try:
                variant = variant_from_dict(json.loads(metrics.read_text()), self.folder)
            except (OSError, ValueError, KeyError, TypeError, ParetoLabError) as exc:
                self.skipped.append(f"{metrics.name}: {exc}")
                continue
            if variant.metrics.get("cancelled") or not variant.artifact.exists():
                continue
            found.append(variant)
        self._remove_orphans({v.name for v in found} | {m.name.removesuffix(".metrics.json") for m in self.folder.glob("*.metrics.json")})
        return sorted(found, key=lambda v: (v.created, v.name))

    def claim_name(self, prefix: str = "v") -> str:
        """The next free variant name (v1, v2, ...), claimed so that another window or process
        working on the same experiment cannot take it too. Release it when the job ends."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / ".experiment.lock"), timeout=30):
            n = 1
            while any(self.folder.glob(f"{prefix}{n}.*")):
                n += 1
            name = f"{prefix}{n}"
            (self.folder / f"{name}.claim").write_text(str(os.getpid()))
        return name

    def release(self, name: str) -> None:
        (self.folder / f"{name}.claim").unlink(missing_ok=True)

    def _remove_orphans(self, names: set[str]) -> None:
        with FileLock(str(self.folder / ".experiment.lock"), timeout=30):
            claimed = {c.name.removesuffix(".claim") for c in self.folder.glob("*.claim") if _alive(c)}
            for f in self.folder.iterdir():
                stem = f.name.split(".")[0]
                if stem in claimed:
                    continue  # a job in another window or process is still writing it
                if f.is_file() and (f.suffix in _MODEL_SUFFIXES or f.suffix == ".claim") and stem not in names:
                    log.info("removing %s: its job never finished", f)
                    f.unlink(missing_ok=True)


def _alive(claim: Path) -> bool:
    """Whether the process that claimed a name still runs."""
    try:
        pid = int(claim.read_text().strip())
    except (OSError, ValueError):
        return False
    import psutil

    return psutil.pid_exists(pid)


def variant_from_dict(doc: dict, folder: Path) -> Variant:
    artifact = folder / Path(doc["artifact"]).name  # the folder may have moved since
    return Variant(
        name=doc["name"],
        recipe=Recipe.from_dict(doc["recipe"], f"{doc['name']}.metrics.json"),
        artifact=artifact,
        parent=doc.get("parent", ""),
        metrics=doc.get("metrics", {}),
        reports=doc.get("reports", []),
        created=doc.get("created", ""),
    )
