"""The main window: a layer table in the middle, docks around it, jobs in the status bar."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabBar,
    QTabWidget,
    QWidget,
)

from paretolab.core.errors import (
    ArchitectureRequiredError,
    CodeRequiredError,
    InputShapeError,
    ParetoLabError,
    UntrustedModelError,
)
from paretolab.core.files import add_code_path
from paretolab.core.sample import sample_model_path
from paretolab.core.store.experiment import default_root
from paretolab.core.tensors import format_shape, parse_input_shapes
from paretolab.gui.graph_view import GraphView
from paretolab.gui.importance_chart import ImportanceChart
from paretolab.gui.jobs_panel import JobsPanel
from paretolab.gui.layer_table import LayerTable
from paretolab.gui.prompts import Prompts, gui_words
from paretolab.gui.settings_panel import SettingsPanel
from paretolab.gui.studio import Studio
from paretolab.gui.summary_panel import SummaryPanel
from paretolab.gui.tradeoff_chart import TradeoffChart
from paretolab.gui.variant_actions import VariantActions
from paretolab.gui.variants_table import VariantsTable
from paretolab.jobs import Job, load_model_job
from paretolab.jobs.job import JobState, wait_for_all_jobs

if TYPE_CHECKING:
    from paretolab.core.pipeline.session import LoadedModel

log = logging.getLogger(__name__)
MAX_RECENT = 10
FRAME_ROOM = QSize(16, 48)  # a window manager's title bar and borders, until the window is shown and knows its own


def _scrolling(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def _runtime_summary() -> str:
    """Runtimes and CPU threads for the status bar, read from package metadata (no imports)."""
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for title, package in (("ONNX Runtime", "onnxruntime"), ("OpenVINO", "openvino")):
        try:
            parts.append(f"{title} {version(package).split('+')[0]}")
        except PackageNotFoundError:
            parts.append(f"{title} missing")
    return " · ".join(parts) + f" · CPU, {os.cpu_count()} threads"


class MainWindow(VariantActions, QMainWindow):
    def __init__(
        self, settings: QSettings | None = None, parent: QWidget | None = None, experiments_root: Path | None = None
    ) -> None:
        super().__init__(parent)
        self.settings = settings or QSettings("ParetoLab", "ParetoLab")
        chosen = self.settings.value("experiments/folder")
        self.experiments_root = Path(experiments_root or chosen or default_root())
        self.prompts = Prompts(self)
        self.loaded: LoadedModel | None = None
        self._opened_with: dict = {"trust": False, "arch": None}
        self.job: Job | None = None  # the model being opened (a quick job in the studio's queue)
        self._analyses = {}
        self._cancelling: Job | None = None  # the job the status bar says is being cancelled

        self.setWindowTitle("ParetoLab")
        self.setAcceptDrops(True)
        self.layer_table = LayerTable(self)
        self.graph_view = GraphView(self)
        self.center = QTabWidget(self)
        self.center.addTab(self.graph_view, "Graph")
        self.center.addTab(self.layer_table, "Layers")
        self.setCentralWidget(self.center)
        self.graph_view.node_selected.connect(self.layer_table.select)
        self.layer_table.layer_selected.connect(self.graph_view.select)
        self.summary = SummaryPanel(self)
        self.summary_dock = self._dock("Model", _scrolling(self.summary), Qt.DockWidgetArea.LeftDockWidgetArea)
        # The left column runs the full height; variants and jobs sit under the graph and the chart.
        # Set before any dock is tabified: a tab bar made for the old corners stays drawn (Qt keeps it).
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.settings_panel = SettingsPanel(self)
        self.settings_panel.folder_requested.connect(self._choose_image_folder)
        self.settings_panel.file_requested.connect(self._choose_data_file)
        self.settings_dock = self._dock("Compress", self.settings_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.chart = TradeoffChart(self)
        self.chart_dock = self._dock("Trade-off", self.chart, Qt.DockWidgetArea.RightDockWidgetArea)
        self.variants = VariantsTable(self)
        self.variants_dock = self._dock("Variants", self.variants, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.settings_panel.follow(self.graph_view)
        self.studio = Studio(self.settings_panel, self.chart, self.variants, self)
        self.studio.error.connect(lambda title, text: self.prompts.error(title, text))
        self.variants.rename_requested.connect(self.rename_variant)
        self.variants.delete_requested.connect(self.delete_variant)
        self.variants.compare_requested.connect(self.compare_variant)
        self.variants.save_recipe_requested.connect(self.save_recipe)
        self.studio.message.connect(lambda title, text: self.prompts.info(title, text))
        self.importance_chart = ImportanceChart(self)
        self.importance_dock = self._dock("Importance", self.importance_chart, Qt.DockWidgetArea.RightDockWidgetArea)
        self.importance_chart.layer_selected.connect(self.graph_view.select)
        self.graph_view.node_selected.connect(self.importance_chart.select)
        self.jobs_panel = JobsPanel(self.studio.queue, self)
        self.jobs_dock = self._dock("Jobs", self.jobs_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.studio.queue.started.connect(lambda job: job.exclusive and self.jobs_dock.raise_())  # not for quick jobs
        self.studio.queue.finished.connect(self._on_any_job_finished)
        self.studio.variant_added.connect(lambda variant: self.variants_dock.raise_())
        self._build_status_bar()
        self._build_menus()
        self.resizeDocks([self.summary_dock, self.settings_dock], [220, 480], Qt.Orientation.Vertical)
        self.resizeDocks([self.variants_dock], [220], Qt.Orientation.Vertical)
        self._fit_to_screen(QSize(1400, 860))
        self.tabifyDockWidget(self.chart_dock, self.importance_dock)  # at the final size: see setCorner above
        self.tabifyDockWidget(self.variants_dock, self.jobs_dock)
        self.resizeDocks([self.settings_dock, self.chart_dock], [370, 400], Qt.Orientation.Horizontal)
        self.variants_dock.raise_()
        self.chart_dock.raise_()
        geometry, state = self.settings.value("window/geometry"), self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        if geometry is not None:
            self._fit_to_screen(self.size())  # saved on a bigger screen: never open larger than this one
        self.settings_panel.restore(self.settings)

    def _fit_to_screen(self, wanted: QSize) -> None:
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(wanted)
            return
        room = screen.availableGeometry()
        roomy = QSize(int(room.width() * 0.85), int(room.height() * 0.85))
        # the frame (title bar, borders) comes on top of the size asked for: leave it room, so the
        # status bar is on screen before the window is maximised
        inside = QSize(room.width() - FRAME_ROOM.width(), room.height() - FRAME_ROOM.height())
        self.resize(wanted.expandedTo(roomy).boundedTo(inside))
        if not room.contains(self.frameGeometry()):
            self.move(room.topLeft())

    # -- layout ---------------------------------------------------------------------------

    def showEvent(self, event) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self._hide_stale_tab_bars)

    def _hide_stale_tab_bars(self) -> None:
        """Qt leaves drawn a tab bar it made for tabified docks in an earlier layout pass (at the
        first size, before the saved state): a second "Variants | Jobs" over the Compress panel.
        The tab bar in use sits against its docks; the others go."""
        docks = {d.windowTitle(): d.geometry() for d in self.findChildren(QDockWidget) if d.isVisible()}
        for bar in self.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly):
            mine = [docks[bar.tabText(i)] for i in range(bar.count()) if bar.tabText(i) in docks]
            box = bar.geometry()
            against = any(abs(box.left() - d.left()) <= 2
                          and (abs(box.top() - d.bottom()) <= 4 or abs(box.bottom() - d.top()) <= 4) for d in mine)
            if mine and not against:
                bar.hide()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = QLabel("Ready", self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(220)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_job)
        self.runtime_label = QLabel(_runtime_summary(), self)
        self.runtime_label.setToolTip("Variants are measured on the backend their last step targets; see `paretolab backends`")
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.runtime_label)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.cancel_button)
        self._set_busy(False)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action("&Open…", self.choose_model, QKeySequence.StandardKey.Open)
        file_menu.addAction(self.open_action)
        file_menu.addAction(self._action("Open &Folder… (Hugging Face, OpenVINO)", self.choose_model_folder))
        samples = file_menu.addMenu("Open &Sample")
        samples.addAction(self._action("&Digits CNN (8×8, tiny: every technique in seconds)", lambda: self.open_sample("onnx")))
        samples.addAction(self._action("Digits &ResNet (32×32 with noise, ~1 ms: trade-offs that show)",
                                       lambda: self.open_sample("demo")))
        self.demo_action = self._action("Open &Demo (measured variants, presentation view)", self.open_demo)
        file_menu.addAction(self.demo_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        self.export_action = self._action("&Export selected variant…", self.export_selected, QKeySequence("Ctrl+E"))
        file_menu.addAction(self.export_action)
        file_menu.addAction(self._action("Export &chart…", self.export_chart))
        file_menu.addAction(self._action("Export &report…", self.export_report))
        file_menu.addAction(self._action("Experiments &folder…", self.choose_experiments_folder))
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))
        run_menu = self.menuBar().addMenu("&Run")
        self.run_action = self._action("&Run settings", self.settings_panel.request_run, QKeySequence("Ctrl+R"))
        run_menu.addAction(self.run_action)
        self.analyse_action = self._action(
            "&Analyse layers (importance, sensitivity, time)", self.analyse_layers, QKeySequence("Ctrl+L")
        )
        run_menu.addAction(self.analyse_action)
        run_menu.addAction(self._action("Set &input shapes…", lambda: self.set_input_shapes()))
        run_menu.addAction(self._action("Cost against &sequence length…", self.profile_sequence_lengths))
        view_menu = self.menuBar().addMenu("&View")
        for dock in (
            self.summary_dock,
            self.settings_dock,
            self.chart_dock,
            self.importance_dock,
            self.variants_dock,
            self.jobs_dock,
        ):
            view_menu.addAction(dock.toggleViewAction())
        self.cancel_action = self._action("&Cancel job", self.cancel_job, QKeySequence(Qt.Key.Key_Escape))
        self.addAction(self.cancel_action)

    def _action(self, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        return action

    # -- opening models -------------------------------------------------------------------
    def choose_model(self) -> None:
        start = str(Path(self.recent_files()[0]).parent) if self.recent_files() else str(Path.home())
        path = self.prompts.open_model_path(start)
        if path:
            self.open_model(path)

    def choose_model_folder(self) -> None:
        """A model saved as a folder (a Hugging Face model), which the file dialog cannot pick."""
        start = str(Path(self.recent_files()[0]).parent) if self.recent_files() else str(Path.home())
        path = self.prompts.open_model_folder(start)
        if path:
            self.open_model(path)

    def open_sample(self, kind: str = "onnx") -> Job:
        """A built-in model: "onnx" (the digits CNN) or "demo" (the 32x32 ResNet)."""
        return self.open_model(sample_model_path(kind))

    def open_demo(self) -> Job:
        """The demo ResNet with its pre-built experiment on the chart at once, and the presentation view."""
        from paretolab.gui.demo_mode import DemoMode

        if getattr(self, "demo", None) is None:
            self.demo = DemoMode(self)
        return self.demo.open()

    def _choose_image_folder(self) -> None:
        """Images (or .wav files) as data: one subfolder per class gives labels; the Preprocess
        field says how images become tensors (sound is cut to the model's input length)."""
        path = self.prompts.choose_folder("Choose a folder of images or .wav files (one subfolder per class for labels)")
        if path:
            self.settings_panel.add_data(path)

    def _choose_data_file(self) -> None:
        """Tensors (.npz, one array per input) or text (one example per line, JSON lines, CSV)."""
        path = self.prompts.choose_data_file("Choose a data file: .npz/.npy tensors, or text for models with a tokenizer")
        if path:
            self.settings_panel.add_data(path)

    def open_model(self, path: str | Path, *, trust: bool = False, input_shapes=None, arch: str | None = None) -> Job:
        """Load `path` in the background; the current model stays until the new one is ready."""
        path = Path(path)
        if self.job is not None:
            self.studio.queue.cancel(self.job)  # a newer request supersedes the one in flight
        job = load_model_job(path, trust=trust, input_shapes=input_shapes, arch=arch, experiments=self.experiments_root)
        self._opened_with = {"trust": trust, "arch": arch}  # what a reopen with input shapes needs again
        job.progressed.connect(self._on_progress)
        job.succeeded.connect(lambda loaded: self._on_loaded(job, loaded, asked=bool(input_shapes)))
        job.failed.connect(lambda error: self._on_load_failed(job, path, error, trust, arch))
        job.finished.connect(lambda: self._on_job_finished(job))
        self.job = job
        self._set_busy(True, f"Opening {path.name}…")
        return self.studio.queue.submit(job)  # a quick job: it starts at once, beside any compute job

    def _on_loaded(self, job: Job, loaded: LoadedModel, asked: bool = False) -> None:
        if job is not self.job:
            return
        if loaded.shape_guess and not asked:  # free dimensions and no remembered shapes: ask once, up front
            QTimer.singleShot(0, lambda: self.set_input_shapes(loaded))
        self.loaded = loaded
        self.layer_table.set_graph(loaded.graph)
        self.graph_view.set_graph(loaded.graph)
        self.summary.show_model(loaded)
        self.studio.set_model(loaded, loaded.torch_reason)
        self.importance_chart.clear()
        self._show_remembered_analysis(loaded)
        self.setWindowTitle(f"ParetoLab — {loaded.handle.path.name}")
        self.status_label.setText(f"{loaded.handle.path.name}: {len(loaded.graph)} layers")
        self._remember(loaded.handle.path)
        stale = [j for j in self.studio.queue.jobs if j.title.startswith("Open ") and not j.exclusive
                 and j.state in (JobState.FAILED, JobState.CANCELLED)]
        self.jobs_panel.forget(stale)  # opens that failed before this one succeeded say nothing now

    def set_input_shapes(self, loaded: LoadedModel | None = None) -> None:
        """Ask for the shapes a model with free dimensions is measured and compressed with, and
        reopen it with them (the model's experiment remembers them)."""
        loaded = loaded or self.loaded
        if loaded is None:
            return
        inputs = ", ".join(f"{s.name} {format_shape(s.shape)}" for s in loaded.handle.inputs)
        fixed = " ".join(("" if len(loaded.handle.inputs) == 1 else f"{s.name}=") + "x".join(map(str, s.shape))
                         for s in loaded.handle.inputs if s.is_static)
        answer = self.prompts.ask_text(
            "Input shapes",
            f"{loaded.handle.path.name} takes {inputs}. Give the shape to measure and compress it with "
            "(one per input, e.g. 1x3x640x640, or name=1x3x640x640 separated by spaces); it is remembered for this model.",
            loaded.shape_guess or fixed,
        )
        if not answer:
            if loaded.shape_guess:
                self.status_label.setText("Free input dimensions: set them with Run > Set input shapes…")
            return
        try:
            shapes = parse_input_shapes(answer.split())
        except ParetoLabError as bad:
            self.prompts.error("Invalid input shape", str(bad))
            return
        self.open_model(loaded.handle.path, input_shapes=shapes, **self._opened_with)

    def _on_load_failed(self, job: Job, path: Path, error: BaseException, trust: bool, arch: str | None) -> None:
        if job is not self.job:
            return
        self.status_label.setText(f"Could not open {path.name}")
        if isinstance(error, UntrustedModelError) and not trust:
            if self.prompts.confirm("Load a model that runs code?", f"{error}\n\nLoad it anyway?", "Load (I trust this file)"):
                QTimer.singleShot(0, lambda: self.open_model(path, trust=True, arch=arch))
            return
        if isinstance(error, CodeRequiredError):
            folder = self.prompts.choose_folder(f"{error}\n\nChoose the folder that holds '{error.module}'")
            if folder:
                add_code_path(Path(folder))
                QTimer.singleShot(0, lambda: self.open_model(path, trust=trust, arch=arch))
            return
        if isinstance(error, ArchitectureRequiredError) and arch is None:
            answer = self.prompts.ask_text("Model class needed", str(error), "package.module:ClassName")
            if answer:
                QTimer.singleShot(0, lambda: self.open_model(path, trust=trust, arch=answer))
            return
        if isinstance(error, InputShapeError) and error.suggestion:
            answer = self.prompts.ask_text("Input shape needed", gui_words(str(error)), error.suggestion.split(" (")[0])
            if answer:
                try:
                    shapes = parse_input_shapes(answer.split())
                except ParetoLabError as bad:
                    self.prompts.error("Invalid input shape", str(bad))
                    return
                QTimer.singleShot(0, lambda: self.open_model(path, trust=trust, input_shapes=shapes, arch=arch))
            return
        if isinstance(error, ParetoLabError):
            self.prompts.error("Could not open the model", str(error))
        else:
            log.error("unexpected error opening %s", path, exc_info=error)
            self.prompts.error(
                "Unexpected error", f"A bug in ParetoLab stopped it opening {path.name}: {type(error).__name__}: {error}"
            )

    def _on_job_finished(self, job: Job) -> None:
        if job is self.job:
            self.job = None
            self._set_busy(False)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(fraction * 1000))
        if message:
            self.status_label.setText(message)

    def cancel_job(self) -> None:
        """Cancel the model being opened, else the running studio job."""
        job = self.job or self.studio.queue.running
        if job is not None:
            self._cancelling = job
            self.status_label.setText("Cancelling…")
            self.studio.queue.cancel(job)

    def _on_any_job_finished(self, job: Job) -> None:
        """"Cancelling…" lasts as long as the job does, however it ends."""
        if job is self._cancelling:
            self._cancelling = None
            self.status_label.setText(f"{job.title}: {job.state.value}")

    def choose_experiments_folder(self) -> None:
        """Keep experiments somewhere else than the user data folder (a project or shared drive)."""
        folder = self.prompts.ask_text("Experiments folder", "Folder for every model's experiment (variants, recipes, metrics):",
                                       str(self.experiments_root))
        if folder:
            self.experiments_root = Path(folder).expanduser()
            self.settings.setValue("experiments/folder", str(self.experiments_root))
            if self.loaded is not None:
                self.open_model(self.loaded.handle.path)  # reopen: show that folder's experiment

    def _set_busy(self, busy: bool, message: str | None = None) -> None:
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.progress_bar.setValue(0)
        if message:
            self.status_label.setText(message)

    # -- recent files ---------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        files = [value] if isinstance(value, str) else list(value or [])
        return [f for f in files if f]

    def _remember(self, path: Path) -> None:
        text = str(path.resolve())
        files = [text, *(f for f in self.recent_files() if f != text)][:MAX_RECENT]
        self.settings.setValue("recent_files", files)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for f in self.recent_files():
            action = self.recent_menu.addAction(f)
            action.triggered.connect(lambda _=False, f=f: self.open_model(f))
        self.recent_menu.setEnabled(bool(self.recent_files()))

    # -- drag and drop --------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_model(files[0])

    # -- shutdown -------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        active = [job for job in self.studio.queue.active() if job.exclusive]  # quick jobs are cancelled without asking
        if active and not self.prompts.confirm(
            "Jobs are running",
            f"{len(active)} job(s) are still running or waiting. Cancel them and close?",
            "Cancel jobs and close",
        ):
            event.ignore()
            return
        self.studio.queue.cancel_all()
        wait_for_all_jobs(60_000)
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings_panel.save(self.settings)
        if getattr(self, "demo", None) is not None:
            self.demo.view.close()  # a window of its own: it would outlive the studio
        super().closeEvent(event)
