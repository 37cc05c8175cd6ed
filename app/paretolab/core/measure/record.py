"""Record inputs: run the user's own script once and keep the inputs their model receives, as an
.npz keyed by input name that `--data` takes everywhere (evaluation and calibration alike).

For models whose inputs no file format describes (mel frames, a tokenizer's ids, a VAD's state
fed back), the user's own pipeline is the only faithful source of data. The script runs as a
subprocess, in the user's folder with the user's arguments; resources/record/sitecustomize.py, put first on its
PYTHONPATH as sitecustomize, saves each call's inputs (ONNX Runtime, OpenVINO, torch) into a private temp folder that is
removed afterwards. Nothing is written but the -o file.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TextIO

import numpy as np

from paretolab.core.measure.data import DataError
from paretolab.core.owned import work_prefix
from paretolab.core.tensors import TensorSpec

# Not a module of the package: it runs inside the user's interpreter as its sitecustomize, and
# importing it here would run it.
_HOOK = Path(str(resources.files("paretolab.resources") / "record" / "sitecustomize.py"))

DEFAULT_MAX = 256


@dataclass
class Recording:
    path: Path
    samples: int
    calls: int
    shapes: dict[str, tuple[int, ...]]
    notes: list[str] = field(default_factory=list)


def record_inputs(model: Path, inputs: Sequence[TensorSpec], command: Sequence[str], out: Path, *,
                  max_samples: int = DEFAULT_MAX, force: bool = False, cwd: Path | None = None,
                  echo: TextIO | None = None) -> Recording:
    """Run `command` once, watching `model` (whose inputs are `inputs`), and write up to
    `max_samples` of the inputs it received to `out`."""
    command = list(command[1:] if command[:1] == ["--"] else command)
    if not command:
        raise DataError("record needs the command that runs your model, after --: "
                        "paretolab record MODEL -o inputs.npz -- python your_script.py ARGS")
    if max_samples < 1:
        raise DataError(f"--max must be at least 1, not {max_samples}")
    out = Path(out).expanduser()
    if out.suffix.lower() != ".npz":
        raise DataError(f"-o {out}: name an .npz file (inputs.npz)")
    if out.exists() and not force:
        raise DataError(f"-o {out} exists; ParetoLab does not overwrite it: choose another name or add --force")
    if not out.parent.is_dir():
        raise DataError(f"-o {out}: no such folder {out.parent}")
    folder = Path(tempfile.mkdtemp(prefix=work_prefix("record")))
    try:
        returncode, last = _run(command, model, inputs, folder, max_samples, cwd, echo or sys.stderr)
        if returncode != 0:
            raise DataError(f"your command exited with status {returncode}" + (f": {last}" if last else "")
                            + "; fix it so it runs on its own, then record again")
        calls = [dict(np.load(f, allow_pickle=False)) for f in sorted((folder / "calls").glob("*.npz"))]
        seen = _seen(folder)
        if not calls:
            others = [s["what"] for s in seen if s["kind"] != "error"]
            problems = [s["what"] for s in seen if s["kind"] == "error"]
            ran = (f"it ran {'; '.join(others[:3])}" if others
                   else "it ran no ONNX Runtime or OpenVINO model and loaded no torch model")
            raise DataError(f"your command never ran {model.name}: {ran}"
                            + (f" ({problems[0]})" if problems else "")
                            + f"; load the model from {model} in the script (ONNX Runtime, OpenVINO, "
                              "or torch.load/jit.load/export.load)")
        arrays, notes = assemble(calls, inputs, max_samples)
        temp_out = folder / "inputs.npz"
        np.savez(temp_out, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first keyword only
        if out.exists():  # --force
            out.unlink()
        shutil.move(str(temp_out), str(out))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    count = len(next(iter(arrays.values())))
    return Recording(out, count, len(calls), {k: v.shape[1:] for k, v in arrays.items()}, notes)


def _run(command: list[str], model: Path, inputs: Sequence[TensorSpec], folder: Path, max_calls: int,
         cwd: Path | None, echo: TextIO) -> tuple[int, str]:
    """Run the command with the hook on its path; its output passes through, the last stderr line is kept."""
    (folder / "calls").mkdir()
    shutil.copyfile(_HOOK, folder / "sitecustomize.py")
    config = folder / "config.json"
    config.write_text(json.dumps({"model": str(model.resolve()), "names": [s.name for s in inputs],
                                  "folder": str(folder), "max_calls": max_calls}), encoding="utf-8")
    env = dict(os.environ, PARETOLAB_RECORD=str(config),
               PYTHONPATH=os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True, errors="replace")
    except OSError as exc:
        raise DataError(f"cannot run '{command[0]}': {exc.strerror or exc}; give the command as you would type it, "
                        "e.g. -- python your_script.py") from None
    tail: collections.deque[str] = collections.deque(maxlen=1)
    assert process.stderr is not None
    for line in process.stderr:
        echo.write(line)
        if line.strip():
            tail.append(line.strip())
    return process.wait(), (tail[0] if tail else "")


def _seen(folder: Path) -> list[dict[str, str]]:
    path = folder / "seen.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def assemble(calls: Sequence[dict[str, np.ndarray]], inputs: Sequence[TensorSpec],
             max_samples: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """The calls' inputs as one array per input name with one sample per row (as tensor_file
    reads them): a batched call gives as many rows as its batch, an input that takes one value
    per call (a sample rate) repeats it for each. Calls whose shapes differ from the first are left out."""
    columns: dict[str, list[np.ndarray]] = {s.name: [] for s in inputs}
    first: dict[str, tuple[int, ...]] | None = None
    count = skipped = 0
    for call in calls:
        named = _by_name(call, inputs)
        axes = {s.name: s.batch_axis for s in inputs if s.batch_axis is not None and named[s.name].ndim > s.batch_axis}
        size = next((named[name].shape[axis] for name, axis in axes.items()), 1)
        rows = {s.name: np.moveaxis(named[s.name], axes[s.name], 0) if s.name in axes
                else np.repeat(named[s.name][None], size, 0) for s in inputs}
        shapes = {k: v.shape[1:] for k, v in rows.items()}
        if first is None:
            first = shapes
        elif shapes != first:
            skipped += 1
            continue
        for name, value in rows.items():
            columns[name].append(value)
        count += size
        if count >= max_samples:
            break
    arrays = {name: np.concatenate(parts)[:max_samples] for name, parts in columns.items()}
    notes = [f"{skipped} call(s) with other input shapes than the first were left out (an .npz holds one shape per input)"
             ] if skipped else []
    return arrays, notes


def _by_name(call: dict[str, np.ndarray], inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """One call's arrays under the model's input names: ORT's feed by name, torch's arguments by position or keyword."""
    named = {k.removeprefix("kw_"): v for k, v in call.items() if k.startswith("kw_")}
    positional = [call[f"arg{i}"] for i in range(len(call)) if f"arg{i}" in call]
    for spec, value in zip(inputs, positional):
        named.setdefault(spec.name, value)
    missing = [s.name for s in inputs if s.name not in named]
    if missing:
        got = ", ".join(named) or "no arrays"
        raise DataError(f"the model was called without input '{missing[0]}' (the call gave {got}); "
                        "record with the model file the script itself loads")
    return named
