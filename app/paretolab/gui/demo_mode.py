"""Demo mode: File > Open Demo opens the demo ResNet with its pre-built experiment on the chart at
once, and the presentation view beside the studio.

The stored variants were measured by scripts/build_demo_experiment.py on the machine their
footnote names; they are drawn on the studio's chart under "demo:" keys (their model files do
not ship, so they are not in the variants table). "Re-measure here" runs every recipe through
the studio, as Run does: the variants land in the demo model's own experiment, and once all are
there the presentation shows this machine's numbers instead.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from paretolab.core.sample import sample_model_path
from paretolab.gui.presentation_view import PresentationView
from paretolab.gui.studio import Studio
from paretolab.jobs.demo_jobs import DemoExperiment, best_variant, demo_experiment_job, trade_off_explanation_job

if TYPE_CHECKING:
    from paretolab.core.compress.variant import Variant
    from paretolab.gui.main_window import MainWindow
    from paretolab.jobs import Job

log = logging.getLogger(__name__)
STORED_PREFIX = "demo:"
MODEL_TITLE = "Demo ResNet (digits at 32×32 with noise)"


def _recipe_key(variant: Variant) -> str:
    import json

    return json.dumps(variant.recipe.to_dict(), sort_keys=True)


class DemoMode(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.view = PresentationView(window)
        self.view.explain_requested.connect(self.explain)
        self.view.remeasure_requested.connect(self.remeasure)
        self.stored: DemoExperiment | None = None
        self.here: dict[str, Variant] = {}  # recipe -> its variant measured on this machine
        self.model_job: Job | None = None
        window.studio.variant_added.connect(self._on_measured_here)

    def open(self) -> Job:
        """Open the demo ResNet and its stored experiment side by side (both quick jobs)."""
        self.model_job = self.window.open_sample("demo")
        self.model_job.succeeded.connect(lambda loaded: self._on_model(loaded))  # after the window's own: set_model cleared
        job = demo_experiment_job()
        job.succeeded.connect(self._on_stored)
        job.failed.connect(lambda exc: self.window.prompts.error("Cannot open the demo", f"the demo's stored experiment: {exc}"))
        self.window.studio.queue.submit(job)
        return job

    # -- the stored experiment ---------------------------------------------------------------
    def _on_stored(self, demo: DemoExperiment) -> None:
        self.stored = demo
        self._show()
        self.view.show()
        self.view.raise_()
        if self.window.loaded is not None and self.window.loaded.handle.path == sample_model_path("demo"):
            self._on_model(self.window.loaded)  # the model was open already: chart the stored variants now

    def _on_model(self, loaded) -> None:
        if self.stored is None or self.window.loaded is not loaded:  # superseded by a later open
            return
        for variant in loaded.earlier_variants:  # re-measured here before: keep counting them
            self._on_measured_here(variant, show=False)
        self._chart_stored()
        self._show()

    def _chart_stored(self) -> None:
        """The stored variants on the studio's chart (those not yet re-measured here), with their original."""
        chart = self.window.chart
        assert self.stored is not None
        for variant in self.stored.variants:
            if _recipe_key(variant) in self.here:
                chart.remove_point(STORED_PREFIX + variant.name)
                continue
            key, base = Studio._baseline_point(variant)
            chart.set_point(replace(base, key=STORED_PREFIX + key, label=base.label + self._footnote()))
            point = Studio._point(variant)
            chart.set_point(replace(point, key=STORED_PREFIX + variant.name, label=point.label + self._footnote()))
        if len(self.here) == len(self.stored.variants):
            for key in [k for k in chart.points if k.startswith(STORED_PREFIX)]:
                chart.remove_point(key)

    def _footnote(self) -> str:
        assert self.stored is not None
        return f"\nthe demo's stored experiment, measured on {self.stored.measured_on()} (Re-measure here: this machine)"

    def _show(self) -> None:
        """The presentation shows one machine's numbers: the stored ones until every recipe is re-measured here."""
        assert self.stored is not None
        if self.here and len(self.here) == len(self.stored.variants):
            variants = list(self.here.values())
            source = ("Every number measured on this machine by 'Re-measure here' (the variants are in the demo model's "
                      "experiment: export, re-time or explain them in the studio).")
        else:
            variants = self.stored.variants
            done = f" Re-measuring here: {len(self.here)} of {len(variants)} done." if self.here else ""
            source = (f"Measured on {self.stored.measured_on()} by scripts/build_demo_experiment.py (paretolab optimize "
                      f"on the shipped demo ResNet); 'Re-measure here' re-runs every recipe on this machine.{done}")
        self.view.show_variants(MODEL_TITLE, variants, best_variant(variants), source)

    # -- re-measuring here -------------------------------------------------------------------
    def remeasure(self) -> list[Job]:
        """Every stored recipe, run here as Run runs settings (each a job in the studio's queue)."""
        studio = self.window.studio
        if self.stored is None or studio.loaded is None or studio.loaded.handle.path != sample_model_path("demo"):
            self.window.prompts.info("Re-measure here", "Open the demo first (File > Open Demo), then re-measure.")
            return []
        jobs = []
        for variant in self.stored.variants:
            if _recipe_key(variant) in self.here:
                continue
            job = studio.run(variant.recipe.to_dict(), studio.loaded.data_spec)
            if job is not None:
                jobs.append(job)
        self.view.set_source(f"Re-measuring {len(jobs)} recipes on this machine: follow them in the Jobs panel.")
        return jobs

    def _on_measured_here(self, variant: Variant, show: bool = True) -> None:
        if self.stored is None or variant.cancelled or Path(variant.parent).name != sample_model_path("demo").name:
            return
        key = _recipe_key(variant)
        if any(_recipe_key(v) == key for v in self.stored.variants):
            self.here[key] = variant
            if show:
                self._chart_stored()
                self._show()

    # -- the explain slide -------------------------------------------------------------------
    def explain(self, variant: Variant) -> Job:
        stored = self.stored.explanations.get(variant.name) if self.stored and variant in self.stored.variants else None
        original = self.window.loaded.handle if self.window.loaded is not None else None
        job = trade_off_explanation_job(variant, stored, original)
        job.succeeded.connect(lambda why, v=variant: self.view.show_explanation(v, why))
        job.failed.connect(lambda exc: self.window.prompts.error("Cannot explain this trade-off", str(exc)))
        return self.window.studio.queue.submit(job)
