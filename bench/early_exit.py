"""Early exit on the demo sample: accuracy, where inputs leave, average MACs, and the average
batch-1 latency over the 360 test images against the original's, timed sample by sample
side by side (ParetoLab's own time_over_data), on ONNX Runtime (default and 1 thread) and
OpenVINO. Exits are calibrated on the validation split; accuracy is reported on test.

    python bench/early_exit.py > tables.md     (Markdown tables for docs/benchmarks.md; progress on stderr)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.timing import time_over_data
from paretolab.core.model.exits import average_macs, early_exit_info, exits_text
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import apply_recipe
from paretolab.core.sample import sample_model_path

sys.path.insert(0, str(Path(__file__).parent))
from md_table import print_table  # noqa: E402

RECIPES = {
    "early exit, 2 exits, ≤0.5 pt": [{"technique": "early_exit", "settings": {}}],
    "early exit, 2 exits, ≤1 pt": [{"technique": "early_exit", "settings": {"budget": 1.0}}],
    "early exit, ≤0.5 pt, If branches": [{"technique": "early_exit", "settings": {"flow": "if"}}],
    "int8 (QDQ), no exits": [{"technique": "quantize", "settings": {"format": "qdq-u8s8"}}],
    "int8 (QDQ) → early exit, ≤0.5 pt": [{"technique": "quantize", "settings": {"format": "qdq-u8s8"}},
                                          {"technique": "early_exit", "settings": {}}],
}
PLACES = (("ort", None), ("ort", 1), ("openvino", None))


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    original = load_model(sample_model_path("demo"))
    plan = DataPlan.from_spec(None, original)
    base = evaluate(original, plan.test)
    accuracy_rows, speed_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, steps in RECIPES.items():
            path, _ = apply_recipe(original, Recipe.from_dict({"steps": steps}), plan, Path(tmp) / f"v{len(accuracy_rows)}")
            variant = original.like(path)
            result = evaluate(variant, plan.test, reference=original)
            info = early_exit_info(variant.native)
            macs = average_macs(info, result.exits) if info else variant.layer_graph().total_macs
            accuracy_rows.append([name, f"{result.top1:.2%}", f"{100 * (result.top1 - base.top1):+.2f}",
                                  f"{(macs or 0) / original.layer_graph().total_macs:.2f}", exits_text(result.exits) or "—"])
            for backend, threads in PLACES:
                (b, v), faster = time_over_data([original, variant], plan.test, backend=backend, threads=threads)
                speed_rows.append([name, f"{backend}, {threads or 'default'} thread{'s' if threads != 1 else ''}",
                                   f"{b.mean_ms:.3f}", f"{v.mean_ms:.3f}",
                                   f"{v.p50_ms:.3f} / {v.p90_ms:.3f} / {v.p99_ms:.3f}", f"**{faster.text()}**"])
                print(f"{name} on {backend}/{threads}: {faster.text()}", file=sys.stderr)
    print(f"Original: top-1 {base.top1:.2%} on {plan.test.name}.\n")
    print_table(["variant", "top-1 (test)", "change (pt)", "MACs, average / original", "where the test inputs left"],
                accuracy_rows)
    print()
    print_table(["variant", "runtime", "original ms (average)", "variant ms (average)", "variant p50 / p90 / p99 ms",
                 "speed-up (95% interval)"], speed_rows)


if __name__ == "__main__":
    main()
