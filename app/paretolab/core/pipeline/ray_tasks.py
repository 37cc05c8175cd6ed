"""What runs on a Ray cluster's workers for a sweep: a trial built, a variant measured on a target,
a node's check that it can do either. Ray pickles these functions by reference, so a worker
imports this module: every node needs ParetoLab installed (the same version as the driver).
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
import time
from pathlib import Path

from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.machine import this_process
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.runtimes import TORCH_BACKENDS
from paretolab.core.model.eager import STATE_DICT_KEY
from paretolab.core.model.handle import ModelHandle, load_model
from paretolab.core.pipeline.optimize import apply_recipe
from paretolab.core.pipeline.scorecard import scorecard
from paretolab.core.store.experiment import model_files


def runtimes_check() -> tuple[str, list[str]]:
    lacks = []
    for module in ("paretolab", "onnx", "onnxruntime", "torch", "openvino"):
        try:
            __import__(module)
        except ImportError:
            lacks.append(module)
    return socket.gethostname(), lacks


_MODELS: dict[str, ModelHandle] = {}  # per worker process: each model written and opened once


def open_shipped(model: dict) -> ModelHandle:
    digest = model["digest"]
    if digest not in _MODELS:
        folder = Path(tempfile.mkdtemp(prefix="paretolab-cluster-model-"))
        for relative, data in model["files"].items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(data)
        _MODELS[digest] = load_model(folder / model["name"], input_shapes=model["shapes"], trust=model["trust"],
                                     held=model.get("held"))
    return _MODELS[digest]


def build(model: dict, plan: DataPlan, recipe_doc: dict, threads: int, backend: str) -> dict:
    """A trial's variant, built on a worker for measuring on `backend`; its files' bytes go home,
    by suffix, with the suffix of the one that is measured."""
    import torch

    torch.set_num_threads(threads)
    started = time.perf_counter()
    handle = open_shipped(model)
    with tempfile.TemporaryDirectory(prefix="paretolab-cluster-trial-") as tmp:
        path, reports = apply_recipe(handle, Recipe.from_dict(recipe_doc), plan, Path(tmp) / "variant", threads=threads,
                                     torch_artifact=backend in TORCH_BACKENDS)
        files = {p.suffix: p.read_bytes() for p in model_files(path)}
    return {"files": files, "artifact": path.suffix, "reports": reports,
            "built_by": {**this_process(), "seconds": time.perf_counter() - started}}


def measure(model: dict, plan: DataPlan, built: dict, backend: str) -> dict:
    """A built trial with its metrics, measured on a target node against the original there (Ray
    hands over the build task's result once it exists)."""
    handle = open_shipped(model)
    files = built["files"]
    with tempfile.TemporaryDirectory(prefix="paretolab-cluster-measure-") as tmp:
        for suffix, data in files.items():
            (Path(tmp) / f"variant{suffix}").write_bytes(data)
        made = handle.like(Path(tmp) / f"variant{built['artifact']}")
        metrics = scorecard(handle, made, plan, backend=backend)
        metrics["measured_by"]["target"] = True  # not the driver: the chart says so
        return {**built, "metrics": metrics}


def model_payload(handle: ModelHandle) -> dict:
    """The model's files (and the weights an ONNX file names for its PyTorch twin) as bytes, with
    how to open them: what a worker needs, put in the object store once."""
    root = handle.path.parent
    paths = [p for f in handle.files for p in ([f] if f.is_file() else sorted(f.rglob("*")))]
    if handle.path.is_dir():
        paths += sorted(p for p in handle.path.rglob("*") if p.is_file())
    twin = {p.key: p.value for p in getattr(handle.native, "metadata_props", [])}.get(STATE_DICT_KEY)
    if twin and (root / twin).is_file():
        paths.append(root / twin)
    files = {str(p.relative_to(root)): p.read_bytes() for p in dict.fromkeys(paths) if p.is_file()}
    digest = hashlib.sha256(b"".join(files.values())).hexdigest()[:16]
    return {"name": handle.path.name, "files": files, "shapes": handle.fixed_shapes(), "held": handle.held,
            "trust": handle.format == "torch-pickle", "digest": digest}
