"""How much does ParetoLab's profiler add to a runtime's own latency?

For the built-in sample and a ResNet-18, on each CPU backend, alternate rounds of
`paretolab.core.measure.profile.profile_model` and a bare loop that calls the runtime directly,
in one run, and print the ratio of their medians (goal: within 5%, i.e. 0.95-1.05).
The machine is shared and noisy, so only ratios measured side by side mean anything.

    python bench/profile_overhead.py [--rounds 5] [--runs 40] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import resnet18  # noqa: E402
from paretolab.core.measure.profile import profile_model  # noqa: E402
from paretolab.core.model.handle import load_model  # noqa: E402
from paretolab.core.sample import sample_model_path  # noqa: E402


def bare_median_ms(backend: str, handle, x: np.ndarray, runs: int, warmup: int = 10) -> float:
    """The plainest timing loop a user would write against the runtime itself."""
    if backend == "ort":
        import onnxruntime as ort

        session = ort.InferenceSession(str(handle.onnx_file()), providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x}

        def call():
            return session.run(None, feed)
    elif backend == "openvino":
        import openvino as ov

        core = ov.Core()
        # The same ov.Model ParetoLab compiles: read from ONNX, or converted from torch directly.
        model = core.read_model(str(handle.path)) if handle.format == "onnx" else handle.openvino_model()
        compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()
        # Set the input once: request.infer({0: x}) would wrap x on every call, which costs
        # ~0.1 ms here, more than the whole sample model takes.
        request.set_input_tensor(ov.Tensor(x))

        def call():
            return request.infer()
    else:
        module = handle.source.module
        tensor = torch.from_numpy(x)

        def call():
            with torch.inference_mode():
                return module(tensor)

    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def ours_median_ms(backend: str, handle, runs: int) -> float:
    result = profile_model(handle, backend=backend, batch_sizes=(1,), runs=runs, budget_s=1e9, per_layer=False, warmup=10)
    return result.latency[0].median_ms


def models(folder: Path):
    yield "digits sample", load_model(sample_model_path("torchscript"))
    path = folder / "resnet18.pt2"
    x = torch.rand(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(resnet18(), (x,)), str(path))
    yield "ResNet-18 224x224", load_model(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, handle in models(Path(tmp)):
            shape = tuple(d if isinstance(d, int) else 1 for d in handle.inputs[0].shape)
            x = np.random.default_rng(0).random(shape, dtype=np.float32)
            for backend in ("torch", "ort", "openvino"):
                # Enough runs that a round lasts ~0.3 s even for a 50-microsecond model.
                runs = max(args.runs, int(300 / max(bare_median_ms(backend, handle, x, 20), 1e-3)))
                ours, bare = [], []
                for _ in range(args.rounds):  # alternate, so drifts in machine load hit both alike
                    ours.append(ours_median_ms(backend, handle, runs))
                    bare.append(bare_median_ms(backend, handle, x, runs))
                o, b = statistics.median(ours), statistics.median(bare)
                rows.append((name, backend, f"{b:.3f}", f"{o:.3f}", f"{o / b:.3f}"))
                print(f"{name:18} {backend:9} bare {b:9.3f} ms  paretolab {o:9.3f} ms  ratio {o / b:.3f}", file=sys.stderr)

    header = ("model", "backend", "bare loop median ms", "ParetoLab median ms", "ratio")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
        for r in (header, *rows):
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
