"""The main window's menu bar: File, Model and Help, each action calling a window slot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu


class MainMenus:
    """Builds ``window``'s menus; the actions are attributes (``auth_file``, ``enroll_files``,
    ``quit``, ``load_model``, ``build_dataset``, ``retrain``, ``settings``, ``about``,
    ``data_location``) so that the window can enable and disable them."""

    def __init__(self, window: Any):
        self.window: QMainWindow = window
        bar = window.menuBar()
        file_menu = bar.addMenu("&File")
        self.auth_file = self._action(
            file_menu,
            "Authenticate a recording…",
            window.choose_file_to_authenticate,
            QKeySequence.Open,
        )
        self.enroll_files = self._action(
            file_menu, "Enroll from recordings…", lambda: window.open_enroll_dialog(browse=True)
        )
        file_menu.addSeparator()
        self.quit = self._action(file_menu, "Quit", window.close, QKeySequence.Quit)
        model_menu = bar.addMenu("&Model")
        self.load_model = self._action(model_menu, "Load model…", window.choose_model)
        self.build_dataset = self._action(model_menu, "Build dataset…", window.open_dataset_dialog)
        self.retrain = self._action(model_menu, "Retrain…", window.open_retrain_dialog)
        model_menu.addSeparator()
        self.settings = self._action(model_menu, "Settings…", window.open_settings_dialog)
        help_menu = bar.addMenu("&Help")
        self.about = self._action(help_menu, "About voxgate", window.show_about)
        self.data_location = self._action(
            help_menu, "Where is my data stored?", window.show_data_location
        )

    def _action(self, menu: QMenu, text: str, slot: Callable, shortcut: Any = None) -> QAction:
        act = QAction(text, self.window)
        if shortcut is not None:
            act.setShortcut(shortcut)
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        return act
