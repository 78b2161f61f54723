"""What the window adds for teaching: the Lesson dock (Help ▸ Lesson, offered at first
launch without blocking), View ▸ Zoom for a projector, Help ▸ Keyboard shortcuts and
Help ▸ What is this?, and What's-this texts on every control of the explorer's panels.

Kept out of ``main_window.py`` so the window only composes: it builds one
:class:`Teaching` after its menus and hands it the View and Help menus.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMenu, QTableView, QWhatsThis

from cnn_explorer.ui import help as helptext
from cnn_explorer.ui.explorer.grid_table import GRID_KEYS
from cnn_explorer.ui.explorer.lesson_dock import OFFERED_KEY, STEP_KEY, LessonPanel
from cnn_explorer.ui.zoom import PresentationZoom


class Teaching(QObject):
    """The lesson dock, the zoom and the Help menu's teaching items of one window."""

    def __init__(self, win: Any, view_menu: QMenu, help_menu: QMenu, keeps_history: str) -> None:
        super().__init__(win)
        self.win = win
        self.lesson = LessonPanel(win.doc, lambda what: win.files.confirm(what, keeps_history))
        self.lesson.replaced.connect(lambda: win.files.forget_path("Lesson"))
        self.dock = QDockWidget("Lesson", win)
        self.dock.setObjectName("lessonDock")
        self.dock.setWidget(self.lesson)
        # A tab beside the input grid, which the lesson never asks to edit (the input is
        # the first feature map too): the layers, kernel and explanation stay in view.
        win.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        win.tabifyDockWidget(win.grid_dock, self.dock)
        self.dock.hide()
        self.lesson.closed.connect(self.dock.hide)
        self.zoom = PresentationZoom(win, [self._zoom_maps, self._zoom_grid])
        self.shortcuts_dialog: helptext.ShortcutsDialog | None = None
        self._menus(view_menu, help_menu)
        self.describe_panels()

    # ------------------------------------------------------------------ menus
    def _menus(self, view: QMenu, help_menu: QMenu) -> None:
        view.addSeparator()
        self.zoom.add_to(view.addMenu("&Zoom"))
        view.addAction(self.dock.toggleViewAction())
        first = help_menu.actions()[0] if help_menu.actions() else None
        self.lesson_action = QAction("&Lesson", self.win)
        self.lesson_action.setStatusTip("A guided lesson through the worked example")
        self.lesson_action.triggered.connect(lambda: self.open_lesson())
        self.shortcuts_action = QAction("&Keyboard shortcuts", self.win)
        self.shortcuts_action.triggered.connect(self.show_shortcuts)
        self.whats_this_action = QAction("&What is this?", self.win)
        self.whats_this_action.setShortcut(QKeySequence("Shift+F1"))
        self.whats_this_action.setStatusTip("Click any control to read what it does")
        self.whats_this_action.triggered.connect(self.enter_whats_this)
        for a in (self.lesson_action, self.shortcuts_action, self.whats_this_action):
            help_menu.insertAction(first, a)  # type: ignore[arg-type]
        help_menu.insertSeparator(first)  # type: ignore[arg-type]

    def describe_panels(self) -> None:
        """Give every control of the explorer's panels a What's-this text (again after
        controls were added)."""
        w = self.win
        for panel, name in (
            (w.grid, "Input"),
            (w.kernel, "Kernel"),
            (w.layers, "Layers"),
            (w.maps, "Feature maps"),
            (w.explanation, "Explanation"),
            (self.lesson, "Lesson"),
        ):
            helptext.add_whats_this(panel, name)

    # ------------------------------------------------------------------ lesson
    def open_lesson(self, step: int | None = None) -> None:
        """Show the Lesson dock at the remembered step, or set up step ``step`` (0-based)."""
        self.dock.show()
        self.dock.raise_()
        if step is not None:
            self.lesson.go(step)
        else:
            self.lesson.show_steps()

    def offer_at_first_launch(self) -> None:
        """The first time the app runs, show the lesson's intro in its dock (no dialog);
        later launches keep the dock as the user left it."""
        s = QSettings()
        if s.value(STEP_KEY) is not None:
            self.lesson.show_steps()  # a returning learner: their step, when they open it
        elif s.value(OFFERED_KEY) is None:
            self.dock.show()
            self.dock.raise_()
            self.lesson.show_intro()
            if self.persist:
                s.setValue(OFFERED_KEY, True)

    # ------------------------------------------------------------------ help
    def shortcut_rows(self) -> list[tuple[str, str]]:
        """Every key of the window: its actions' shortcuts and the grid's zoom keys."""
        rows = helptext.shortcut_rows(self.win)
        return sorted(set(rows) | {(what, key) for key, what in GRID_KEYS.items()})

    def show_shortcuts(self) -> helptext.ShortcutsDialog:
        """Help ▸ Keyboard shortcuts (non-modal; rebuilt from the actions each time)."""
        if self.shortcuts_dialog is not None:
            self.shortcuts_dialog.close()
            self.shortcuts_dialog.deleteLater()
        self.shortcuts_dialog = helptext.ShortcutsDialog(self.shortcut_rows(), self.win)
        self.shortcuts_dialog.show()
        return self.shortcuts_dialog

    def enter_whats_this(self) -> None:
        self.describe_panels()
        QWhatsThis.enterWhatsThisMode()

    # ------------------------------------------------------------------ zoom and settings
    @property
    def persist(self) -> bool:
        return bool(self.win.persist_settings)

    def set_persist(self, on: bool) -> None:
        """False for headless runs: lesson progress and zoom leave QSettings alone."""
        self.lesson.persist = self.zoom.persist = on

    def restore(self) -> None:
        """The zoom of the last session, and the lesson offered on the very first."""
        self.zoom.restore()
        self.offer_at_first_launch()

    def _zoom_maps(self, new: float, _old: float) -> None:
        self.win.maps.set_zoom(new)

    def _zoom_grid(self, new: float, old: float) -> None:
        grid = self.win.grid
        grid.font_scale = new
        px = grid.cell_px if grid.fitting else round(grid.cell_px * new / old)
        grid.cell_px = 0  # re-apply even an unchanged size: the font changed
        grid.set_cell_px(px)
        for table in self.win.kernel.findChildren(QTableView):  # rows follow the font
            rows = table.verticalHeader()
            rows.setDefaultSectionSize(round(rows.defaultSectionSize() * new / old))
        self.win.kernel.sync()  # and so do the weight columns
