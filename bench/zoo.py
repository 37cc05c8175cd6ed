"""Every zoo model through every technique, measured in one run: the table in docs/models.md.

The zoo (tests/zoo_models.py) is six small architectures built in code with random weights:
a ResNet, a MobileNetV3-style CNN, a two-output U-Net, a two-head detector, a GRU voice-activity
model with a state input and a sample-rate scalar, and a transformer encoder over token ids.
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

from paretolab.core.compress.variant import Recipe  # noqa: E402
from paretolab.core.errors import ParetoLabError  # noqa: E402
from paretolab.core.measure.plan import DataPlan  # noqa: E402
from paretolab.core.pipeline.optimize import optimize  # noqa: E402
from zoo_models import TECHNIQUES, ZOO, open_zoo_model, write_zoo_files  # noqa: E402


def cell(entry_name: str, technique: str, folder: Path) -> str:
    entry, tech = ZOO[entry_name], TECHNIQUES[technique]
    files = write_zoo_files(entry, folder / entry_name, dynamo=False)
    handle = open_zoo_model(entry, files["pytorch" if tech.needs_module else "onnx"])
    try:
        variant = optimize(handle, Recipe.from_dict(tech.recipe_doc()), DataPlan.from_spec("random:32", handle),
                           folder / entry_name / "out", technique.replace(" ", "_").replace("%", ""))
    except ParetoLabError as exc:
        return f"fails: {exc}"
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
        for name in ZOO:
            rows.append([name] + [cell(name, technique, Path(tmp)) for technique in TECHNIQUES])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = ["model", *TECHNIQUES]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
