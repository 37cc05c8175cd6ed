"""The studio's working parts: the job queue, the variants, the chart and the table, kept in
step. The main window owns the widgets; this object owns what happens between them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from paretolab.core.compress.variant import (
    Recipe,
    Variant,
    collapse_warning,
    technique_kind,
)
from paretolab.core.errors import ParetoLabError
from paretolab.core.pipeline.sweep_settings import SweepSettings
from paretolab.core.store.plotted import axis_measure, plotted_score
from paretolab.core.units import percent
from paretolab.gui.settings_panel import SettingsPanel
from paretolab.gui.tradeoff_chart import ChartPoint, TradeoffChart
from paretolab.gui.variants_table import VariantsTable
from paretolab.jobs import Job
from paretolab.jobs.queue import JobQueue
from paretolab.jobs.recipe_check import recipe_problem
from paretolab.jobs.studio_jobs import (
    delete_job,
    explain_job,
    export_job,
    optimize_job,
    rename_job,
    reprofile_job,
    sweep_job,
)

if TYPE_CHECKING:
    from paretolab.core.pipeline.session import LoadedModel

log = logging.getLogger(__name__)
EXPORT_FORMATS = {"ONNX (.onnx)": "onnx", "OpenVINO IR (.xml + .bin)": "openvino",
                  "PyTorch (.pt2; variants of an edited PyTorch model)": "pytorch", "Triton model folder": "triton"}
EXPORT_FILTERS = {"onnx": "ONNX model (*.onnx)", "openvino": "OpenVINO IR (*.xml)",
                  "pytorch": "PyTorch program (*.pt2 *.pt)", "triton": "Triton model folder (a new folder's name) (*)"}


class Studio(QObject):
    variant_added = Signal(object)  # Variant
    message = Signal(str, str)  # title, text: something the user should read
    error = Signal(str, str)

    def __init__(self, settings_panel: SettingsPanel, chart: TradeoffChart, table: VariantsTable,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = JobQueue(self)
        self.settings_panel, self.chart, self.table = settings_panel, chart, table
        self.loaded: LoadedModel | None = None
        self.sweep: Job | None = None  # the Explore in progress: one at a time
        self.data_spec = "digits"
        settings_panel.run_requested.connect(self.run)
        settings_panel.explore_requested.connect(self._explore_requested)
        table.reprofile_requested.connect(self.reprofile)
        table.explain_requested.connect(self.explain)
        chart.point_selected.connect(lambda key: key != "baseline" and table.select(key))
        table.variant_selected.connect(chart.select)

    # -- model --------------------------------------------------------------------------
    def set_model(self, loaded: LoadedModel, torch_reason: str | None) -> None:
        """Show the model's experiment: every variant made from it before, on the chart."""
        self.loaded = loaded
        self.chart.clear()
        self.table.model.clear()
        self.settings_panel.set_model(loaded.graph, torch_reason, loaded.handle)
        self.settings_panel.set_devices(loaded.devices)
        self.settings_panel.set_data(loaded.data_spec, loaded.preprocess)
        for variant in loaded.earlier_variants:
            self._on_variant(variant)

    def variants_dir(self) -> Path:
        """Where this model's variants are written: its experiment folder."""
        assert self.loaded is not None
        return self.loaded.experiment_folder

    # -- running ------------------------------------------------------------------------
    def run(self, recipe_doc: dict, data_spec: str) -> Job | None:
        if self.loaded is None:
            return None
        problem = recipe_problem(recipe_doc, self.loaded.handle)  # refused before any work, in one line
        if problem is not None:
            self.error.emit("Cannot run these settings", problem)
            return None
        recipe = Recipe.from_dict(recipe_doc, "settings")
        self.data_spec = data_spec
        job = optimize_job(self.loaded.handle, recipe, data_spec, self.variants_dir(),
                           device=self.settings_panel.device.currentText(), preprocess=self.settings_panel.preprocess_text())
        job.succeeded.connect(self._on_variant)
        job.failed.connect(lambda exc, job=job: self._on_failed(job, exc))
        return self.queue.submit(job)

    def _explore_requested(self, budget: float, data_spec: str) -> Job | None:
        return self.explore(SweepSettings(budget_s=budget, overrides=self.settings_panel.sweep_overrides()), data_spec)

    def explore(self, settings: SweepSettings, data_spec: str) -> Job | None:
        """A sweep whose trials land on the chart as they finish."""
        if self.loaded is None:
            return None
        if self.sweep is not None:  # a second click: say so instead of queueing a second sweep silently
            self.message.emit("Explore is already running", f"'{self.sweep.title}' is still {self.sweep.state.value}; "
                              "cancel it in the Jobs panel first (Explore again resumes where it stopped).")
            return None
        self.data_spec = data_spec
        job = sweep_job(self.loaded.handle, data_spec, self.variants_dir(), settings, self.loaded.torch_reason is None,
                        preprocess=self.settings_panel.preprocess_text(), ray=self.settings_panel.ray_cluster())
        job.partial.connect(self._on_variant)
        job.succeeded.connect(
            lambda result: result.exhausted and self.message.emit("Explore finished", result.note().capitalize())
        )
        job.failed.connect(lambda exc, job=job: self._on_failed(job, exc))
        job.finished.connect(lambda job=job: self._sweep_ended(job))
        self.sweep = job
        self.settings_panel.set_exploring(True)
        return self.queue.submit(job)

    def _sweep_ended(self, job: Job) -> None:
        if job is self.sweep:
            self.sweep = None
            self.settings_panel.set_exploring(False)

    def _on_variant(self, variant: Variant) -> None:
        if variant.cancelled or self.table.variant(variant.name) is not None:
            return
        key, point = self._baseline_point(variant)
        if key not in self.chart.points:
            self.chart.set_point(point)
        self.chart.set_score_label(variant.selection_split, axis_measure(variant))
        self.chart.set_point(self._point(variant))
        self.table.add(variant)
        self.table.select(variant.name)
        self.variant_added.emit(variant)

    def _on_failed(self, job: Job, exc: BaseException) -> None:
        if isinstance(exc, ParetoLabError):
            self.error.emit("The job failed", str(exc))
        else:
            log.error("job %s failed", job.title, exc_info=exc)
            self.error.emit("The job failed", f"A bug in ParetoLab stopped '{job.title}': {type(exc).__name__}: {exc}")

    @staticmethod
    def _point(variant: Variant) -> ChartPoint:
        """Placed by the score the variant is chosen by (validation), labelled with both."""
        m = variant.measured
        collapsed = collapse_warning(variant)
        label = (f"{variant.name}: {variant.recipe.summary()} ({m.where})\n"
                 f"speed-up {variant.speedup_text()}\ntest top-1 {percent(m.top1)}, chosen by {variant.selection_split}"
                 + (f"\n{variant.deployed_text()}" if variant.deployed_text() else "")
                 + (f"\n⚠ busy: {variant.busy}" if variant.busy else "")
                 + (f"\nlatency: {variant.latency_text()}\nexits: {variant.exits_text()}" if variant.exits else "")
                 + (f"\nmeasured on {by.host} (a Ray target), not here" if (by := variant.measured_by).target else "")
                 + (f"\n⚠ {collapsed}" if collapsed else ""))
        score, plotted = plotted_score(variant)
        return ChartPoint(
            variant.name, label, m.latency_ms, score, m.size_bytes, technique_kind(variant.recipe),
            quality=m.quality, plotted=plotted,
        )

    @staticmethod
    def _baseline_point(variant: Variant) -> tuple[str, ChartPoint]:
        """The original on the variant's backend and device: one point per place variants ran."""
        b, key = variant.baseline, variant.baseline_key
        return key, ChartPoint(key, f"{key}: the original model, FP32 on {b.where}", b.latency_ms,
                               variant.baseline_selection_score, b.size_bytes, "baseline", True)

    # -- managing variants: small jobs, since the experiment's lock may be held elsewhere ----
    def delete(self, variant: Variant) -> Job:
        job = delete_job(variant)
        job.succeeded.connect(lambda _, v=variant: self._on_deleted(v))
        job.failed.connect(lambda exc: self.error.emit("Cannot delete", str(exc)))
        return self.queue.submit(job)

    def _on_deleted(self, variant: Variant) -> None:
        if variant in self.table.model.variants:
            self.table.model.remove(variant)
        self.chart.remove_point(variant.name)

    def rename(self, variant: Variant, new_name: str) -> Job:
        job = rename_job(variant, new_name)
        job.succeeded.connect(lambda renamed, v=variant: self._replace(v, renamed))
        job.failed.connect(lambda exc: self.error.emit("Cannot rename", str(exc)))
        return self.queue.submit(job)

    def reprofile(self, variant: Variant) -> Job | None:
        if self.loaded is None:
            return None
        job = reprofile_job(self.loaded.handle, variant, self.data_spec)
        job.succeeded.connect(lambda updated, v=variant: self._replace(v, updated))
        job.failed.connect(lambda exc, job=job: self._on_failed(job, exc))
        return self.queue.submit(job)

    def explain(self, variant: Variant) -> Job | None:
        """Why the variant is (not) faster: expected against measured, with the reasons."""
        if self.loaded is None:
            return None
        job = explain_job(self.loaded.handle, variant)
        job.succeeded.connect(lambda result, v=variant: self.message.emit(f"Why is {v.name} (not) faster?", result.text()))
        job.failed.connect(lambda exc, job=job: self._on_failed(job, exc))
        return self.queue.submit(job)

    def _replace(self, old: Variant, new: Variant) -> None:
        """Show a renamed or re-profiled variant where the old one was."""
        if old not in self.table.model.variants:
            return  # deleted, or the model was closed, meanwhile
        self.table.model.replace(old, new)
        self.chart.remove_point(old.name)
        self.chart.set_point(self._point(new))

    # -- export -------------------------------------------------------------------------
    def export(self, variant: Variant, fmt: str, dest: Path, *, replace: bool = False) -> Job:
        """`replace`: the user confirmed replacing `dest` in the Save dialog."""
        expected = variant.measured.top1
        protect = tuple(self.loaded.handle.files) if self.loaded is not None else ()
        job = export_job(variant.artifact, fmt, dest, self.data_spec, expected, force=replace, protect=protect)
        job.succeeded.connect(lambda result, v=variant: self._on_exported(v, result))
        job.failed.connect(lambda exc, job=job: self._on_failed(job, exc))
        return self.queue.submit(job)

    def _on_exported(self, variant: Variant, result) -> None:
        measured = "n/a" if result.top1 is None else f"{100 * result.top1:.2f}%"
        if result.matches:
            self.message.emit("Exported", f"{variant.name} → {result.path}\nRe-loaded and re-evaluated: top-1 {measured}, "
                                          "the same as the variants table.")
        else:
            expected = "n/a" if result.expected_top1 is None else f"{100 * result.expected_top1:.2f}%"
            self.error.emit("Exported, but the numbers differ",
                            f"{result.path}: top-1 {measured} after re-loading, {expected} in the table.")
