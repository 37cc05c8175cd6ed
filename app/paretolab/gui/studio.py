"""The studio's working parts: the job queue, the variants, the chart and the table, kept in
step. The main window owns the widgets; this object owns what happens between them."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from paretolab.core.compress.variant import (
    Recipe,
    Variant,
    collapse_warning,
    delete_variant,
    rename_variant,
    save_metrics,
    score,
    technique_kind,
)
from paretolab.core.errors import ParetoLabError
from paretolab.core.store.experiment import Experiment
from paretolab.core.store.sweep import SweepSettings
from paretolab.gui.settings_panel import SettingsPanel
from paretolab.gui.tradeoff_chart import ChartPoint, TradeoffChart
from paretolab.gui.variants_table import VariantsTable
from paretolab.jobs import Job, LoadedModel
from paretolab.jobs.queue import JobQueue
from paretolab.jobs.studio_jobs import export_job, optimize_job, profile_job, sweep_job

log = logging.getLogger(__name__)
EXPORT_FORMATS = {"ONNX (.onnx)": "onnx", "OpenVINO IR (.xml + .bin)": "openvino", "Triton model folder": "triton"}
EXPORT_FILTERS = {"onnx": "ONNX model (*.onnx)", "openvino": "OpenVINO IR (*.xml)",
                  "triton": "Triton model folder (a new folder's name) (*)"}


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
        self.data_spec = "digits"
        settings_panel.run_requested.connect(self.run)
        settings_panel.explore_requested.connect(lambda budget, data: self.explore(SweepSettings(budget_s=budget), data))
        table.reprofile_requested.connect(self.reprofile)
        chart.point_selected.connect(lambda key: key != "baseline" and table.select(key))
        table.variant_selected.connect(chart.select)

    # -- model --------------------------------------------------------------------------
    def set_model(self, loaded: LoadedModel, torch_reason: str | None) -> None:
        """Show the model's experiment: every variant made from it before, on the chart."""
        self.loaded = loaded
        self.chart.clear()
        self.table.model.clear()
        self.settings_panel.set_model(loaded.graph, torch_reason)
        self.settings_panel.set_devices(loaded.devices)
        for variant in loaded.earlier_variants:
            self._on_variant(variant)

    def variants_dir(self) -> Path:
        """Where this model's variants are written: its experiment folder."""
        assert self.loaded is not None
        return self.loaded.experiment_folder

    def _next_name(self, folder: Path) -> str:
        """v1, v2, ...: claimed in the experiment folder, so a second window cannot take it."""
        return Experiment(folder).claim_name()

    # -- running ------------------------------------------------------------------------
    def run(self, recipe_doc: dict, data_spec: str) -> Job | None:
        if self.loaded is None:
            return None
        try:
            recipe = Recipe.from_dict(recipe_doc, "settings")
        except ParetoLabError as exc:
            self.error.emit("Invalid settings", str(exc))
            return None
        self.data_spec = data_spec
        folder = self.variants_dir()
        name = self._next_name(folder)
        job = optimize_job(self.loaded.handle, recipe, data_spec, folder, name, device=self.settings_panel.device.currentText())
        job.finished.connect(lambda: Experiment(folder).release(name))
        job.succeeded.connect(self._on_variant)
        job.failed.connect(lambda exc, job=job: self._on_failed(job, exc))
        return self.queue.submit(job)

    def explore(self, settings: SweepSettings, data_spec: str) -> Job | None:
        """A sweep whose trials land on the chart as they finish."""
        if self.loaded is None:
            return None
        self.data_spec = data_spec
        job = sweep_job(self.loaded.handle, data_spec, self.variants_dir(), settings, self.loaded.torch_reason is None)
        job.partial.connect(self._on_variant)
        job.succeeded.connect(lambda result: result.exhausted and self.message.emit("Explore finished", result.note().capitalize()))
        job.failed.connect(lambda exc, job=job: self._on_failed(job, exc))
        return self.queue.submit(job)

    def _on_variant(self, variant: Variant) -> None:
        if variant.metrics.get("cancelled") or self.table.variant(variant.name) is not None:
            return
        baseline = variant.metrics["baseline"]
        if "baseline" not in self.chart.points:
            self.chart.set_point(ChartPoint("baseline", "baseline: the original model, FP32 on ONNX Runtime",
                                            baseline["latency_ms"], score(baseline), baseline["size_bytes"], "baseline", True))
        m = variant.metrics["variant"]
        collapsed = collapse_warning(variant)
        label = f"{variant.name}: {variant.recipe.summary()} ({m['backend']})" + (f"\n⚠ {collapsed}" if collapsed else "")
        self.chart.set_point(ChartPoint(variant.name, label,
                                        m["latency_ms"], score(m), m["size_bytes"], technique_kind(variant.recipe)))
        self.table.add(variant)
        self.table.select(variant.name)
        self.variant_added.emit(variant)

    def _on_failed(self, job: Job, exc: BaseException) -> None:
        if isinstance(exc, ParetoLabError):
            self.error.emit("The job failed", str(exc))
        else:
            log.error("job %s failed", job.title, exc_info=exc)
            self.error.emit("The job failed", f"A bug in ParetoLab stopped '{job.title}': {type(exc).__name__}: {exc}")

    # -- managing variants ----------------------------------------------------------------
    def delete(self, variant: Variant) -> None:
        delete_variant(variant)
        self.table.model.remove(variant)
        self.chart.remove_point(variant.name)

    def rename(self, variant: Variant, new_name: str) -> None:
        old = variant.name
        try:
            rename_variant(variant, new_name)
        except ParetoLabError as exc:
            self.error.emit("Cannot rename", str(exc))
            return
        point = self.chart.points.get(old)
        self.chart.remove_point(old)
        if point is not None:
            self.chart.set_point(replace(point, key=new_name, label=f"{new_name}: {variant.recipe.summary()}"))
        self.table.model.changed(variant)

    def reprofile(self, variant: Variant) -> Job:
        backend = variant.metrics["variant"]["backend"]
        job = profile_job(variant.artifact, backend)
        job.succeeded.connect(lambda result, v=variant: self._on_reprofiled(v, result))
        job.failed.connect(lambda exc, job=job: self._on_failed(job, exc))
        return self.queue.submit(job)

    def _on_reprofiled(self, variant: Variant, result) -> None:
        m = variant.metrics["variant"]
        m["latency_ms"] = result.latency_at(1).median_ms
        baseline = variant.metrics.get("baseline", {}).get("latency_ms")
        variant.metrics["speedup"] = baseline / m["latency_ms"] if baseline else None
        save_metrics(variant)
        point = self.chart.points.get(variant.name)
        if point is not None:
            self.chart.set_point(replace(point, latency_ms=m["latency_ms"]))
        self.table.model.changed(variant)

    # -- export -------------------------------------------------------------------------
    def export(self, variant: Variant, fmt: str, dest: Path) -> Job:
        expected = variant.metrics.get("variant", {}).get("top1")
        job = export_job(variant.artifact, fmt, dest, self.data_spec, expected)
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
