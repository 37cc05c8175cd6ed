"""Every zoo model through every technique, measured in one run: the table in docs/models.md.

The zoo (tests/zoo_models.py) is six small architectures built in code with random weights:
a ResNet, a MobileNetV3-style CNN, a two-output U-Net, a two-head detector, a GRU voice-activity
model with a state input and a sample-rate scalar, and a transformer encoder over token ids; and
three tiny Hugging Face folders (tests/hf_models.py): BERT- and ViT-style classifiers and a GPT-2-style LM.
Each technique runs through `optimize` on 32 random inputs, as a user without data would; the
speed-up is the variant's median batch-1 latency against the original's, timed side by side in
alternating rounds on the variant's runtime; fidelity is the worst output's cosine similarity
to the original (and its SQNR). Random weights make pruning look worse than on trained models.

    python bench/zoo.py [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import hf_models  # noqa: E402
from md_table import print_table  # noqa: E402
from paretolab.core.compress.variant import Recipe  # noqa: E402
from paretolab.core.errors import ParetoLabError  # noqa: E402
from paretolab.core.measure.plan import DataPlan  # noqa: E402
from paretolab.core.model.handle import load_model  # noqa: E402
from paretolab.core.pipeline.optimize import optimize  # noqa: E402
from zoo_models import TECHNIQUES, ZOO, ZooTechnique, open_zoo_model, write_zoo_files  # noqa: E402


def _quant(backend: str, precision: str) -> dict:
    return {"technique": "quantize", "settings": {"backend": backend, "precision": precision}}


# what pays on transformers, measured on every model (the test matrix keeps to TECHNIQUES)
COLUMNS = {**TECHNIQUES, **{t.name: t for t in [
    ZooTechnique("weight-only int8 (OpenVINO)", (_quant("openvino", "int8-weights"),), 0.99),
    ZooTechnique("weight-only int4 (OpenVINO)", (_quant("openvino", "int4-weights"),), 0.9),
    ZooTechnique("weight-only int4 (ONNX Runtime)", (_quant("ort", "int4-weights"),), 0.9),
]}}
HF = {f"hf-{name}": name for name in hf_models.SHAPES}  # Hugging Face folders (tests/hf_models.py)


def _open(name: str, tech: ZooTechnique, folder: Path):
    if name in HF:
        path = folder / name / HF[name]
        if not path.exists():
            hf_models.write(HF[name], folder / name)
        return load_model(path, input_shapes={None: hf_models.SHAPES[HF[name]]})
    entry = ZOO[name]
    files = write_zoo_files(entry, folder / name, dynamo=False)
    return open_zoo_model(entry, files["pytorch" if tech.needs_module else "onnx"])


def _not_applicable(message: str) -> str:
    """The table's short form of a refusal whose reason docs/models.md explains."""
    for marker, short in (("has no MatMul with constant weights", "not applicable: no MatMul layers"),
                          ("recurrent layers", "not applicable: recurrent layer (see below)")):
        if marker in message:
            return short
    return f"fails: {message.split(';')[0]}"


def cell(name: str, technique: str, folder: Path) -> str:
    tech = COLUMNS[technique]
    handle = _open(name, tech, folder)
    try:
        variant = optimize(handle, Recipe.from_dict(tech.recipe_doc()), DataPlan.from_spec("random:32", handle),
                           folder / name / "out", technique.replace(" ", "_").replace("%", ""))
    except ParetoLabError as exc:
        return _not_applicable(str(exc))
    m = variant.measured
    sqnr = "" if m.sqnr_db is None else f", {m.sqnr_db:.0f} dB"
    return f"{variant.speedup:.2f}x · cos {m.cosine:.4f}{sqnr}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in [*ZOO, *HF]:
            rows.append([name] + [cell(name, technique, Path(tmp)) for technique in COLUMNS])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = ["model", *COLUMNS]
    if args.markdown:
        print_table(header, rows)
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
