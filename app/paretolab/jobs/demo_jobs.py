"""The demo's pre-built experiment: real variants of the demo ResNet, measured by
scripts/build_demo_experiment.py on the machine machine.json names, shipped as metrics only.

A stakeholder sees a full chart at once; every number on it is one `paretolab optimize` wrote,
and "Re-measure here" re-runs each recipe on this machine. Their model files do not ship (they
would add megabytes to the wheel), so a stored variant is shown, never exported or re-timed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from paretolab.core.compress.variant import Variant, collapse_warning
from paretolab.core.errors import ParetoLabError
from paretolab.core.store.pareto import Point, pareto_front
from paretolab.jobs.job import Job

if TYPE_CHECKING:
    from paretolab.core.compress.insight.explain import Explanation
    from paretolab.core.model.handle import ModelHandle

DEMO_FOLDER = "demo_experiment"
BEST_WITHIN = 0.01  # the best variant keeps the original's accuracy within one point (validation split)


def demo_experiment_dir() -> Path:
    return Path(str(resources.files("paretolab.resources") / DEMO_FOLDER))


@dataclass
class DemoExperiment:
    """The stored variants, where and when they were measured, and explain's answer for each."""

    variants: list[Variant]
    machine: dict
    explanations: dict[str, dict] = field(default_factory=dict)

    def measured_on(self) -> str:
        """"Intel Xeon ..., 2 cores (ONNX Runtime 1.22, OpenVINO 2025.2) on 2026-12-05": every number's source."""
        m = self.machine
        return (f"{m.get('cpu', 'an unnamed CPU')}, {m.get('cores', '?')} cores (ONNX Runtime {m.get('onnxruntime', '?')}, "
                f"OpenVINO {m.get('openvino', '?')}, PyTorch {m.get('torch', '?')}) on {str(m.get('measured', '?'))[:10]}")


def read_demo_experiment(folder: Path | None = None) -> DemoExperiment:
    """Every stored variant (oldest first), read as the experiment reads its own metrics files."""
    from paretolab.core.store.experiment import variant_from_dict

    folder = folder or demo_experiment_dir()
    variants = [variant_from_dict(json.loads(f.read_text()), folder) for f in sorted(folder.glob("*.metrics.json"))]
    machine = json.loads((folder / "machine.json").read_text())
    explanations_file = folder / "explanations.json"
    explanations = json.loads(explanations_file.read_text()) if explanations_file.exists() else {}
    return DemoExperiment(sorted(variants, key=lambda v: (v.created, v.name)), machine, explanations)


def best_variant(variants: list[Variant]) -> Variant | None:
    """The fastest variant on the accuracy-versus-latency front that keeps the original's accuracy
    within a point (chosen on the validation split, as sweeps choose); else the front's most accurate.
    Broken and collapsed variants are never chosen, as in the report's headline."""
    usable = [v for v in variants if not v.cancelled and not v.measured.broken and not collapse_warning(v)]
    front_keys = {p.key for p in pareto_front([Point(v.name, v.measured.latency_ms, v.selection_score) for v in usable])}
    front = [v for v in usable if v.name in front_keys]
    if not front:
        return None
    keeping = [v for v in front if v.selection_score >= v.baseline_selection_score - BEST_WITHIN]
    if keeping:
        return max(keeping, key=lambda v: v.speedup or 0.0)
    return max(front, key=lambda v: v.selection_score)


def demo_experiment_job() -> Job:
    """A quick job: reading a few small JSON files, off the GUI thread like every other read."""
    return Job("Open the demo's measured variants", lambda progress: read_demo_experiment(), exclusive=False)


def trade_off_explanation_job(variant: Variant, stored: dict | None, original: ModelHandle | None) -> Job:
    """explain's answer for `variant`: worked out now when its model file is here (re-measured on
    this machine), else the one the build script worked out where the variant was measured."""

    def run(progress) -> Explanation:
        from paretolab.core.compress.insight.explain import Explanation, explain

        if variant.artifact.exists() and original is not None:
            progress.report(0.1, f"explaining {variant.name}")
            return explain(original, variant, original.like(variant.artifact))
        if stored is None:
            raise ParetoLabError(f"the demo's stored experiment has no explanation for {variant.name}; use 'Re-measure "
                                 "here' to make and explain it on this machine")
        return Explanation(**{k: v for k, v in stored.items() if k != "slower_layers"},
                           slower_layers=[_slower(s) for s in stored.get("slower_layers", [])])

    return Job(f"Explain {variant.name}'s trade-off", run, exclusive=False)


def _slower(doc: dict):
    from paretolab.core.compress.insight.explain import SlowerLayer

    return SlowerLayer(**doc)
