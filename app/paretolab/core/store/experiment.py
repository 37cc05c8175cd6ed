"""The experiment of one model: every variant made from it, kept on disk.

One folder per model file content (in the user's data folder, or one the user chooses).
Each variant is its model file plus NAME.recipe.json and NAME.metrics.json; the metrics file
is written atomically, last, so a variant exists exactly when its metrics file does. An
Experiment is the only writer of those files, and it takes the folder's file lock (which
another window or process may hold) — so call it from a worker, never the GUI thread. A
process killed mid-job leaves at most a model file without metrics, under the name it had
claimed, which the next open removes: nothing but that job is lost, nothing half-written is
ever shown, and nothing ParetoLab did not write is ever removed. A claim is a marker file made
exclusively (core/owned.py): two runs never share a name, and the claim records the identity of
each file written under it, so clean-up removes a file only while it is still the one that run wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from paretolab.core.compress.variant import Recipe, Variant
from paretolab.core.errors import ParetoLabError
from paretolab.core.files import WriteError, files_digest, write_json_atomic
from paretolab.core.model.torch_artifact import TORCH_SUFFIXES, torch_sibling
from paretolab.core.owned import Claim, owner_alive, read_marker, remove_stale_write_folders, still_written
from paretolab.core.settings import SettingsError

if TYPE_CHECKING:
    from paretolab.core.model.handle import ModelHandle

log = logging.getLogger(__name__)
MODEL_SUFFIXES = (".onnx", ".xml", ".bin", *TORCH_SUFFIXES)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VARIANT_FILE_SUFFIXES = (*MODEL_SUFFIXES, ".recipe.json", ".metrics.json")
LOCK_TIMEOUT_S = 30
SHAPES_FILE = "input_shapes.json"
DATA_FILE = "data.json"


def default_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("paretolab")) / "experiments"


def model_digest(handle: ModelHandle) -> str:
    return files_digest(handle.files)


def check_name(name: str) -> str:
    """A variant name is a file name in the experiment folder, never a path: no folders, no '..',
    nothing absolute — the folder is --out's to choose."""
    if not _NAME.match(name) or ".." in name or name.endswith(".claim"):
        raise SettingsError(f"'{name}' is not a usable variant name: use letters, digits, '-', '_' or '.' (no folders or "
                            "'..'), up to 64 characters; --out chooses the folder")
    return name


class Experiment:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.skipped: list[str] = []  # files that could not be read, with why
        self._claims: dict[str, Claim] = {}

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
        self._mkdir()
        with self._lock():
            n = 1
            while True:
                name = f"{prefix}{n}"
                if not any(self.folder.glob(f"{name}.*")):
                    try:
                        self._claim(name)
                        return name
                    except FileExistsError:
                        pass
                n += 1

    def _claim(self, name: str) -> None:
        """Mark `name` as being written by this process (exclusively: FileExistsError if it is claimed)."""
        try:
            self._claims[name] = Claim.take(self.folder, name)
        except FileExistsError:
            raise
        except OSError as exc:
            raise WriteError(f"cannot write in {self.folder}: {exc.strerror or exc}; choose a writable folder with free "
                             "space (nothing was changed)") from None

    def release(self, name: str) -> None:
        claim = self._claims.pop(name, None)
        if claim is not None:
            claim.release()

    def remove_written(self, name: str) -> None:
        """Remove the files this process wrote under its claim of `name` (a job that failed half-way),
        each only while it is still the file written."""
        claim = self._claims.get(name)
        for path in claim.written() if claim is not None else []:
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def new_name(self, prefix: str = "v") -> Iterator[str]:
        """A claimed name for a variant being made, released when the block ends."""
        name = self.claim_name(prefix)
        try:
            yield name
        finally:
            self.release(name)

    @contextlib.contextmanager
    def claimed(self, name: str, opened: tuple[Path, ...] = ()) -> Iterator[str]:
        """`name`, chosen by the user, claimed while its variant is made (as new_name claims its own).
        Refused in one line when it is not a plain file name, when another run is making it, or
        when a file of that name is there already (`opened`: the user's model files, named as such)."""
        check_name(name)
        self._mkdir()
        # No folder lock: the claim file is created exclusively, so two runs cannot both hold it, and
        # a folder holding only the variant's files is what the user asked for.
        try:
            self._claim(name)
        except FileExistsError:
            if not self._clear_stale_claim(name):
                raise self._busy(name) from None
            try:
                self._claim(name)
            except FileExistsError:
                raise self._busy(name) from None
        taken = [self.folder / (name + s) for s in VARIANT_FILE_SUFFIXES if (self.folder / (name + s)).exists()]
        if taken:
            self.release(name)
            mine = any(taken[0].resolve() == Path(f).resolve() for f in opened)
            raise SettingsError(f"{taken[0]} {'is the model you opened' if mine else 'already exists'}; choose another "
                                "--name or --out (ParetoLab never overwrites a file)")
        try:
            yield name
        finally:
            self.release(name)

    def _busy(self, name: str) -> ParetoLabError:
        doc = read_marker(self.folder / f"{name}.claim")
        if doc is None:
            return SettingsError(f"{self.folder / (name + '.claim')} is there and was not written by a ParetoLab run; "
                                 "choose another --name (or remove that file if it is yours)")
        return SettingsError(f"another ParetoLab run (process {doc['pid']}) is making '{name}' in {self.folder}; wait for "
                             "it to finish or choose another --name")

    def _mkdir(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(f"cannot create {self.folder}: {exc.strerror or exc}; choose a writable folder") from None

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
        self._mkdir()
        lock = FileLock(str(self.folder / ".experiment.lock"))
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S)
        except Timeout:
            raise ParetoLabError(f"{self.folder} is busy: another ParetoLab window or process has held it for "
                                 f"{LOCK_TIMEOUT_S} s; try again when it has finished") from None
        except OSError as exc:
            raise WriteError(f"cannot write in {self.folder}: {exc.strerror or exc}; choose a writable folder") from None
        try:
            yield
        finally:
            lock.release()

    def _remove_orphans(self, names: set[str]) -> None:
        """A process killed while it made a variant leaves its claim, which records the files it
        had written: remove those that are still the very files it wrote. A file the claim does
        not record, or one replaced since, is never touched — the folder may be one the user keeps
        their own models in — and a claim file not of ParetoLab's making is left alone."""
        for folder in remove_stale_write_folders(self.folder):
            log.info("removed %s: a killed job was writing there", folder.name)
        stale = [c for c in self.folder.glob("*.claim") if _stale(c)]
        if not stale:
            return
        try:
            with self._lock():
                for claim in stale:
                    self._clear_stale_claim(claim.name.removesuffix(".claim"), names)
        except WriteError as exc:  # a folder that cannot be written (read-only) can still be read
            log.info("left stale claims in place: %s", exc)

    def _clear_stale_claim(self, name: str, finished: set[str] | None = None) -> bool:
        """Remove a dead run's claim of `name` and, unless its variant was finished, the files it
        wrote; False when the claim is not a dead run's (a live one, or not ParetoLab's)."""
        claim = self.folder / f"{name}.claim"
        doc = read_marker(claim)
        if doc is None or owner_alive(doc):
            return False
        if finished is None:
            finished = {name} if (self.folder / f"{name}.metrics.json").exists() else set()
        if name not in finished:
            for path in still_written(self.folder, doc):
                log.info("removing %s: the job that wrote it never finished", path.name)
                path.unlink(missing_ok=True)
        claim.unlink(missing_ok=True)
        return True


def _stale(claim: Path) -> bool:
    """Whether a claim is a valid marker of a process that no longer runs."""
    doc = read_marker(claim)
    return doc is not None and not owner_alive(doc)


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
