"""The experiment of one model: every variant made from it, kept on disk.

One folder per model file content (in the user's data folder, or one the user chooses).
Each variant is its model file plus NAME.recipe.json and NAME.metrics.json; the metrics file
is written atomically, last, so a variant exists exactly when its metrics file does. An
Experiment is the only writer of those files, and it takes the folder's file lock (which
another window or process may hold) — so call it from a worker, never the GUI thread. A
process killed mid-job leaves at most a model file without metrics, under the name it had
claimed, which the next open removes: nothing but that job is lost, nothing half-written is
ever shown, and nothing ParetoLab did not write is ever removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from filelock import FileLock, Timeout

from paretolab.core.compress.variant import Recipe, Variant
from paretolab.core.errors import ParetoLabError
from paretolab.core.files import files_digest, write_json_atomic
from paretolab.core.model.handle import ModelHandle
from paretolab.core.model.torch_artifact import TORCH_SUFFIXES, torch_sibling
from paretolab.core.settings import SettingsError

log = logging.getLogger(__name__)
MODEL_SUFFIXES = (".onnx", ".xml", ".bin", *TORCH_SUFFIXES)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOCK_TIMEOUT_S = 30
SHAPES_FILE = "input_shapes.json"
DATA_FILE = "data.json"


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
            if variant.cancelled or not variant.artifact.exists():
                continue
            found.append(variant)
        self._remove_orphans(
            {v.name for v in found} | {m.name.removesuffix(".metrics.json") for m in self.folder.glob("*.metrics.json")}
        )
        return sorted(found, key=lambda v: (v.created, v.name))

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """The input shapes the user gave for this model, remembered so they are asked once."""
        try:
            doc = json.loads((self.folder / SHAPES_FILE).read_text())
            return {str(k): tuple(int(d) for d in v) for k, v in doc.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def remember_input_shapes(self, shapes: dict[str, tuple[int, ...]]) -> None:
        if shapes and shapes != self.input_shapes():
            write_json_atomic(self.folder / SHAPES_FILE, {k: list(v) for k, v in shapes.items()})

    def data_choice(self) -> tuple[str, str | None] | None:
        """The image folder (and its preprocessing recipe) last used for this model, while it exists."""
        try:
            doc = json.loads((self.folder / DATA_FILE).read_text())
            spec, preprocess = str(doc["spec"]), doc.get("preprocess")
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return (spec, str(preprocess) if preprocess else None) if Path(spec).is_dir() else None

    def remember_data(self, spec: str, preprocess: str | None) -> None:
        """Remember an image folder and its recipe; the built-in data needs no remembering."""
        if Path(spec).is_dir() and self.data_choice() != (spec, preprocess):
            write_json_atomic(self.folder / DATA_FILE, {"spec": spec, "preprocess": preprocess})

    def claim_name(self, prefix: str = "v") -> str:
        """The next free variant name (v1, v2, ...), claimed so that another window or process
        working on the same experiment cannot take it too. Release it when the job ends."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock():
            n = 1
            while any(self.folder.glob(f"{prefix}{n}.*")):
                n += 1
            name = f"{prefix}{n}"
            self._claim(name)
        return name

    def _claim(self, name: str) -> None:
        """Mark `name` as being written by this process: if the process dies, its files are known to be ours."""
        (self.folder / f"{name}.claim").write_text(str(os.getpid()))

    def release(self, name: str) -> None:
        (self.folder / f"{name}.claim").unlink(missing_ok=True)

    @contextlib.contextmanager
    def new_name(self, prefix: str = "v") -> Iterator[str]:
        """A claimed name for a variant being made, released when the block ends."""
        name = self.claim_name(prefix)
        try:
            yield name
        finally:
            self.release(name)

    @contextlib.contextmanager
    def claimed(self, name: str) -> Iterator[str]:
        """`name`, chosen by the user, claimed while its variant is made (as new_name claims its own;
        no lock: the user chose the name, there is no free one to find)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._claim(name)
        try:
            yield name
        finally:
            self.release(name)

    def save(self, variant: Variant) -> None:
        """Write the variant's recipe, then its metrics: last, so it exists once both are there."""
        self.folder.mkdir(parents=True, exist_ok=True)
        variant.recipe.save(self.folder / f"{variant.name}.recipe.json")
        write_json_atomic(self.folder / f"{variant.name}.metrics.json", variant.to_dict())

    def delete(self, variant: Variant) -> None:
        with self._lock():
            for f in variant_files(variant):
                f.unlink(missing_ok=True)

    def rename(self, variant: Variant, new_name: str) -> Variant:
        """The variant under its new name, its files renamed; refuses names that are unsafe or
        already used. The Variant given is left as it was."""
        if not _NAME.match(new_name):
            raise SettingsError(f"'{new_name}' is not a usable name: use letters, digits, '-', '_' or '.', up to 64 characters")
        with self._lock():
            if any(self.folder.glob(f"{new_name}.*")):
                raise SettingsError(f"a variant named '{new_name}' already exists in {self.folder}")
            old = variant.artifact.stem
            for f in variant_files(variant):
                f.rename(self.folder / f.name.replace(old, new_name, 1))
            renamed = replace(variant, name=new_name, artifact=self.folder / variant.artifact.name.replace(old, new_name, 1))
            write_json_atomic(self.folder / f"{new_name}.metrics.json", renamed.to_dict())
        return renamed

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.folder / ".experiment.lock"), timeout=LOCK_TIMEOUT_S):
                yield
        except Timeout:
            raise ParetoLabError(f"{self.folder} is busy: another ParetoLab window or process has held it for "
                                 f"{LOCK_TIMEOUT_S} s; try again when it has finished") from None

    def _remove_orphans(self, names: set[str]) -> None:
        """A process killed while it made a variant leaves its claim and the model files it had
        written: remove those. A file without a claim is never touched, whatever its name — the
        folder may be one the user keeps their own models in."""
        stale = [c for c in self.folder.glob("*.claim") if not _alive(c)]
        if not stale:
            return
        with self._lock():
            for claim in stale:
                name = claim.name.removesuffix(".claim")
                if name not in names:
                    for suffix in MODEL_SUFFIXES:
                        if (self.folder / f"{name}{suffix}").is_file():
                            log.info("removing %s%s: its job never finished", name, suffix)
                            (self.folder / f"{name}{suffix}").unlink(missing_ok=True)
                claim.unlink(missing_ok=True)


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
    variant = Variant(
        name=doc["name"],
        recipe=Recipe.from_dict(doc["recipe"], f"{doc['name']}.metrics.json"),
        artifact=artifact,
        parent=doc.get("parent", ""),
        metrics=doc.get("metrics", {}),
        reports=doc.get("reports", []),
        created=doc.get("created", ""),
    )
    variant.check()  # now, so a damaged file is skipped rather than shown
    return variant


def variant_files(variant: Variant) -> list[Path]:
    """Every file of a variant: its model files, recipe and metrics."""
    folder, stem = variant.artifact.parent, variant.artifact.stem
    files = model_files(variant.artifact) + [folder / f"{stem}.recipe.json", folder / f"{stem}.metrics.json"]
    return [f for f in files if f.exists()]


def model_files(artifact: Path) -> list[Path]:
    """A variant's model: its file, an IR's .bin, and the PyTorch file saved beside it."""
    sibling = torch_sibling(artifact)
    return [artifact] + ([artifact.with_suffix(".bin")] if artifact.suffix == ".xml" else []) + ([sibling] if sibling else [])
