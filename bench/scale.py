"""How a sweep's wall time falls with Ray workers on this machine, and what dominates a trial.

The same space of settings on the demo ResNet (structured and unstructured pruning, distillation,
FP16: 8 settings) is swept to the end in a fresh experiment: in this process, then on a local Ray
instance with 1, 2 and 4 workers. Builds run on the workers; every variant is measured in the
driver's process, one at a time, as `paretolab sweep --ray` does.

    python bench/scale.py > tables.md     (Markdown for docs/scale.md; progress on stderr)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.cluster import ClusterSettings, cluster_sweep
from paretolab.core.pipeline.sweep import SweepSettings, search_space, sweep
from paretolab.core.sample import sample_model_path
from paretolab.core.store.experiment import Experiment

sys.path.insert(0, str(Path(__file__).parent))
from md_table import print_table  # noqa: E402

SPACE = SweepSettings(budget_s=3600, sparsities=(0.0, 0.5), quantize=("none", "ort-fp16"), distill_epochs=2)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    handle = load_model(sample_model_path("demo"))
    data = DataPlan.from_spec("digits", handle)
    settings = len(search_space(SPACE, torch_edits=True))
    rows, first = [], None
    for workers in (None, 1, 2, 4):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            if workers is None:
                result = sweep(handle, data, Experiment(Path(tmp)), SPACE, torch_edits=True)
            else:
                result = cluster_sweep(handle, data, Experiment(Path(tmp)), SPACE, ClusterSettings(workers=workers),
                                       torch_edits=True)
            wall = time.perf_counter() - started
            made = {v.name: v for v in Experiment(Path(tmp)).variants()}.values()
        first = first or wall
        build = [v.metrics["built_by"]["seconds"] for v in made if "built_by" in v.metrics]
        measure = [v.metrics["measured_by"]["seconds"] for v in made if "measured_by" in v.metrics]
        rows.append(["in this process" if workers is None else f"Ray, {workers} worker{'s' * (workers != 1)}",
                     f"{len(made)} of {settings}", f"{wall:.0f} s", f"{first / wall:.2f}x",
                     f"{statistics.mean(build):.1f} s" if build else "—",
                     f"{statistics.mean(measure):.1f} s" if measure else "—"])
        print(f"{rows[-1][0]}: {wall:.0f} s ({result.note()})", file=sys.stderr)
    print_table(["where the trials run", "settings measured", "wall time", "speed-up", "build per trial (worker)",
                 "measure per trial (driver)"], rows)


if __name__ == "__main__":
    main()
