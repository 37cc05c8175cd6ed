"""What the main window does with variants and layers: compare, save, rename, delete, analyse
and export. A mixin of MainWindow (kept apart so the window module stays about layout and
opening models); it uses the window's prompts, settings, studio and widgets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from paretolab.gui.compare_dialog import CompareDialog
from paretolab.gui.scaling_dialog import ScalingDialog
from paretolab.gui.studio import EXPORT_FILTERS, EXPORT_FORMATS, Studio
from paretolab.jobs import Job
from paretolab.jobs.studio_jobs import analysis_job, compare_job, report_job, save_recipe_job, scaling_job

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings

    from paretolab.core.pipeline.session import LoadedModel
    from paretolab.gui.graph_view import GraphView
    from paretolab.gui.importance_chart import ImportanceChart
    from paretolab.gui.prompts import Prompts
    from paretolab.gui.settings_panel import SettingsPanel
    from paretolab.gui.tradeoff_chart import TradeoffChart
    from paretolab.gui.variants_table import VariantsTable


def analysis_key(loaded: LoadedModel) -> tuple[str, str]:
    """The model file's contents (its experiment folder is named by their digest) and its input shapes."""
    return str(loaded.experiment_folder), repr(sorted(loaded.handle.fixed_shapes().items(), key=str))


class VariantActions:
    # What the host window provides (MainWindow builds them in its __init__).
    prompts: Prompts
    settings: QSettings
    studio: Studio
    loaded: LoadedModel | None
    settings_panel: SettingsPanel
    variants: VariantsTable
    chart: TradeoffChart
    graph_view: GraphView
    importance_chart: ImportanceChart
    compare_dialog: CompareDialog | None = None
    scaling_dialog: ScalingDialog | None = None
    _analyses: dict  # layer analyses by analysis_key: kept in memory, so reopening a model shows its analysis again

    def compare_variant(self, variant) -> Job | None:
        others = {f"{v.name}: {v.recipe.summary()} ({v.measured.backend})": v
                  for v in self.variants.model.variants if v is not variant}
        if not others or self.loaded is None:
            self.prompts.error("Nothing to compare", "Build a second variant first.")
            return None
        choice = self.prompts.ask_choice("Compare", f"Compare {variant.name} ({variant.recipe.summary()}) with:", list(others))
        other = others.get(choice) if choice else None
        if other is None:
            return None
        job = compare_job(self.loaded.handle, [variant, other], self.settings_panel.data_spec())
        job.succeeded.connect(self._show_comparison)
        job.failed.connect(lambda exc: self.prompts.error("Comparison failed", str(exc)))
        return self.studio.queue.submit(job)

    def _show_comparison(self, comparison) -> None:
        self.compare_dialog = CompareDialog(comparison, self)
        self.compare_dialog.show()

    def save_recipe(self, variant) -> Job | None:
        """Save a variant's recipe; `paretolab run RECIPE MODEL` reproduces the variant headless."""
        start = str(Path(self.settings.value("export/folder", str(Path.home()))) / f"{variant.name}.recipe.json")
        dest = self.prompts.save_path("Save recipe", start, "Recipe (*.json)")
        if not dest:
            return None
        job = save_recipe_job(variant.recipe, Path(dest))
        job.succeeded.connect(lambda path: self.prompts.info(
            "Recipe saved", f"{path}\nReproduce it with: paretolab run {path} MODEL --out DIR"))
        job.failed.connect(lambda exc: self.prompts.error("Could not save the recipe", str(exc)))
        return self.studio.queue.submit(job)

    def delete_variant(self, variant) -> Job | None:
        if self.prompts.confirm("Delete variant", f"Delete {variant.name} ({variant.recipe.summary()}) and its files in "
                                f"{variant.artifact.parent}?", "Delete"):
            return self.studio.delete(variant)
        return None

    def rename_variant(self, variant) -> Job | None:
        name = self.prompts.ask_text("Rename variant", f"New name for {variant.name} ({variant.recipe.summary()}):", variant.name)
        if name and name != variant.name:
            return self.studio.rename(variant, name)
        return None

    # -- sequence length ------------------------------------------------------------------
    def profile_sequence_lengths(self) -> Job | None:
        """Cost against sequence length, for models with a free sequence axis (transformers)."""
        if self.loaded is None:
            return None
        answer = self.prompts.ask_text("Sequence lengths", "Sequence lengths to measure (MACs and batch-1 latency):",
                                       "32,64,128,256")
        if not answer:
            return None
        try:
            lengths = sorted({int(x) for x in answer.replace(" ", "").split(",") if x})
        except ValueError:
            self.prompts.error("Invalid sequence lengths", f"'{answer}' is not a list of whole numbers, e.g. 32,64,128")
            return None
        if not lengths or lengths[0] < 1:
            self.prompts.error("Invalid sequence lengths", "give positive lengths, e.g. 32,64,128")
            return None
        job = scaling_job(self.loaded.handle, lengths, device=self.settings_panel.device.currentText())
        job.succeeded.connect(self._show_scaling)
        job.failed.connect(lambda exc: self.prompts.error("Sequence lengths failed", str(exc)))
        return self.studio.queue.submit(job)

    def _show_scaling(self, result) -> None:
        self.scaling_dialog = ScalingDialog(result, self)
        self.scaling_dialog.show()

    # -- layer analysis -------------------------------------------------------------------
    def analyse_layers(self) -> Job | None:
        if self.loaded is None:
            return None
        job = analysis_job(self.loaded.handle, self.settings_panel.data_spec())
        loaded = self.loaded
        job.succeeded.connect(lambda analysis: self._analyses.__setitem__(analysis_key(loaded), analysis))
        job.succeeded.connect(lambda analysis: self._show_analysis(loaded, analysis))
        job.failed.connect(lambda exc: self.prompts.error("Layer analysis failed", str(exc)))
        return self.studio.queue.submit(job)

    def _show_remembered_analysis(self, loaded: LoadedModel) -> None:
        """The same model file opened again: its layer analysis comes back without running again."""
        analysis = self._analyses.get(analysis_key(loaded))
        if analysis is not None:
            self._show_analysis(loaded, analysis)

    def _show_analysis(self, loaded: LoadedModel, analysis) -> None:
        if loaded is not self.loaded:
            return  # another model was opened meanwhile
        l1 = {x.layer: x.l1 for x in analysis.importance}
        taylor = {x.layer: x.taylor for x in analysis.importance if x.taylor is not None}
        scan = analysis.sensitivity
        in_points = scan is None or scan.metric != "cosine"  # accuracy or agreement: points, as the report says it
        drops = {k: (100 * v if in_points else v) for k, v in scan.by_layer().items()} if scan else {}
        sensitivity = "sensitivity (points lost, pruning)" if in_points else "sensitivity (cosine lost, pruning)"
        share = {t.layer: t.share for t in analysis.times if t.mapped}
        for title, values in (("importance (mean |w|)", l1), ("importance (Taylor)", taylor),
                              (sensitivity, drops), ("latency share (ONNX Runtime)", share),
                              ("int8 output SQNR, dB (low = hurt)", analysis.int8_sqnr)):
            if values:
                self.graph_view.set_metric(title, values)
                self.importance_chart.set_metric(title, values)
        self.graph_view.metric_box.setCurrentText("importance (Taylor)" if taylor else "importance (mean |w|)")
        self.graph_view.set_details(
            "latency", {t.layer: f"{t.ms:.4f} ms ({100 * t.share:.1f}%)" for t in analysis.times if t.mapped}
        )
        self.graph_view.set_details(
            "int8 error", {k: f"output SQNR {v:.1f} dB in an all-int8 model" for k, v in analysis.int8_sqnr.items()}
        )
        drop_text = "worst drop {:.1f} points when pruned alone" if in_points else "worst cosine drop {:.4f} when pruned alone"
        self.graph_view.set_details("sensitivity", {k: drop_text.format(v) for k, v in drops.items()})
        self.graph_view.set_details(
            "importance",
            {x.layer: f"mean |w| {x.l1:.4g}" + (f", Taylor {x.taylor:.3g}" if x.taylor else "") for x in analysis.importance},
        )

    # -- export ---------------------------------------------------------------------------
    def export_selected(self) -> Job | None:
        variant = self.variants.selected()
        if variant is None:
            self.prompts.error("Nothing to export", "Select a variant in the table or on the chart first.")
            return None
        choice = self.prompts.ask_choice(
            "Export", f"Export {variant.name} ({variant.recipe.summary()}) as:", list(EXPORT_FORMATS)
        )
        if choice is None:
            return None
        fmt = EXPORT_FORMATS[choice]
        start = str(Path(self.settings.value("export/folder", str(Path.home()))) / variant.name)
        dest = self.prompts.save_path("Export to", start, EXPORT_FILTERS[fmt])
        if not dest:
            return None
        self.settings.setValue("export/folder", str(Path(dest).parent))
        return self.studio.export(variant, fmt, Path(dest), replace=True)  # the Save dialog asked before replacing

    def export_report(self) -> Job | None:
        """An HTML report (with JSON and CSV) of every variant of the open model, for stakeholders."""
        if self.loaded is None:
            return None
        dest = self.prompts.save_path("Export report to folder", str(Path.home() / f"{self.loaded.handle.path.stem}-report"))
        if not dest:
            return None
        job = report_job(self.loaded.experiment_folder, Path(dest), self.loaded.handle.path.name)
        job.succeeded.connect(lambda paths: self.prompts.info("Report written", "\n".join(str(p) for p in paths)))
        job.failed.connect(lambda exc: self.prompts.error("Could not write the report", str(exc)))
        return self.studio.queue.submit(job)

    def export_chart(self) -> None:
        dest = self.prompts.save_path("Export chart", str(Path.home() / "tradeoff.png"), "PNG image (*.png);;SVG image (*.svg)")
        if dest:
            self.chart.export(Path(dest))
