"""Every zoo model through every technique, measured in one run: the table in docs/models.md.

The zoo (tests/zoo_models.py) is six small architectures built in code with random weights:
a ResNet, a MobileNetV3-style CNN, a two-output U-Net, a two-head detector, a GRU voice-activity
model with a state input and a sample-rate scalar, and a transformer encoder over token ids; and
three tiny Hugging Face folders (tests/hf_models.py): BERT- and ViT-style classifiers and a GPT-2-style LM.
Each technique runs through `optimize` on 32 random inputs, as a user without data would; the
speed-up is the variant's median batch-1 latency against the original's, timed side by side in
alternating rounds on the variant's runtime; fidelity is the worst output's cosine similarity
to the original (and its SQNR), and the "judged on" column says what the verdicts rest on: on
random inputs each output's quality for its kind is unknown (a collapse is still caught: such a
cell reads "broken"). Random weights make pruning look worse than on trained models.

    python bench/zoo.py [--markdown]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import hf_models  # noqa: E402
from md_table import print_table  # noqa: E402
from paretolab.core.compress.variant import Recipe  # noqa: E402
from paretolab.core.errors import ParetoLabError  # noqa: E402
from paretolab.core.measure.output_kinds import RANDOM_NOTE, is_random_data  # noqa: E402
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
# a scalar that means something is held at its value, as the random-scalar note tells a user to
# (a random 0 or 1 sample rate silences the VAD's input: its probability is then all but constant)
RANDOM = {"vad": "random:32:sr=16000"}
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


def cell(name: str, technique: str, folder: Path) -> tuple[str, str | None, list[str]]:
    """The table's cell; what the verdict was judged on ("real data" or "random: unknown"), None
    when nothing was measured; the output kinds judged."""
    tech = COLUMNS[technique]
    handle = _open(name, tech, folder)
    try:
        variant = optimize(handle, Recipe.from_dict(tech.recipe_doc()), DataPlan.from_spec(RANDOM.get(name, "random:32"), handle),
                           folder / name / "out", re.sub(r"[^A-Za-z0-9_.-]+", "_", technique).strip("_"))
    except ParetoLabError as exc:
        return _not_applicable(str(exc)), None, []
    m = variant.measured
    sqnr = "" if m.sqnr_db is None else f", {m.sqnr_db:.0f} dB"
    broken = " · broken" if m.broken else ""
    judged = "real data" if _real(variant) else "random: unknown"
    kinds = [f["kind"] for f in variant.metrics.get("fidelity") or []]
    return f"{variant.speedup:.2f}x · cos {m.cosine:.4f}{sqnr}{broken}", judged, kinds


def _real(variant) -> bool:  # noqa: ANN001 - a Variant
    """Judged on real data: the verdict is not "unknown (random inputs)" (a collapse is broken on any data)."""
    return variant.measured.verdict_text() != RANDOM_NOTE and not is_random_data(variant.measured.dataset)


def judged_on(cells: list[tuple[str, str | None, list[str]]]) -> str:
    """One row's "judged on": random inputs (quality unknown) or real data, with the kinds judged."""
    found = sorted({j for _, j, _ in cells if j})
    kinds = list(dict.fromkeys(k for _, _, ks in cells for k in ks))
    return " / ".join(found) + (f" ({', '.join(kinds)})" if kinds else "") if found else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--models", help="only these rows, comma-separated (e.g. detector,vad)")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(",") if args.models else [*ZOO, *HF]:
            cells = [cell(name, technique, Path(tmp)) for technique in COLUMNS]
            rows.append([name, judged_on(cells)] + [text for text, _, _ in cells])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = ["model", "judged on", *COLUMNS]
    if args.markdown:
        print_table(header, rows)
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
