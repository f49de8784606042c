"""Enrolled voice profiles: authorized checkbox, rename, delete, re-enroll."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from voxgate.core.errors import VoxgateError

REENROLL_NEEDED = "re-enroll needed"


class _CompactList(QListWidget):
    """A list that asks for little height and grows into whatever the sidebar has left."""

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(200, 80)


class ProfileList(QWidget):
    """List of the profiles in a ``ProfileStore``; a profile made with another model is
    marked "re-enroll needed". Emits :attr:`reenroll_requested` (name, authorized)."""

    reenroll_requested = Signal(str, bool)
    changed = Signal()
    error = Signal(str)

    def __init__(self, store: Any, encoder: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.encoder = encoder
        self.list = _CompactList(self)
        self.list.setObjectName("profileList")
        self.list.setMinimumHeight(72)  # the sidebar fits a 760-px window without scrolling
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.rename_button = QPushButton("Rename…", self)
        self.delete_button = QPushButton("Delete", self)
        self.reenroll_button = QPushButton("Re-enroll", self)
        self.rename_button.clicked.connect(self._on_rename)
        self.delete_button.clicked.connect(self._on_delete)
        self.reenroll_button.clicked.connect(self._on_reenroll)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        for b in (self.rename_button, self.delete_button, self.reenroll_button):
            b.setProperty("flat", True)
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self._updating = False
        self.refresh()

    def set_encoder(self, encoder: Any) -> None:
        """A new model: compatibility marks change."""
        self.encoder = encoder
        self.refresh()

    def names(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def item(self, name: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == name:
                return self.list.item(i)
        return None

    def refresh(self) -> None:
        """Reload the list from the store, keeping the selection."""
        current = self.current_name()
        self._updating = True
        self.list.clear()
        try:
            profiles = sorted(self.store.list(), key=lambda p: p.name.lower())
        except VoxgateError as exc:
            profiles = []
            self.error.emit(str(exc))
        for profile in profiles:
            compatible = self.store.is_compatible(profile, self.encoder)
            label = f"{profile.name}  ·  {profile.speech_s:.0f} s"
            if not compatible:
                label += f"  ·  {REENROLL_NEEDED}"
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, profile.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if profile.authorized else Qt.CheckState.Unchecked
            )
            item.setToolTip(
                "checked = authorized"
                + ("" if compatible else f"\nmade with another model: {REENROLL_NEEDED}")
            )
            if not compatible:
                item.setForeground(Qt.GlobalColor.darkYellow)
            self.list.addItem(item)
            if profile.name == current:
                self.list.setCurrentItem(item)
        self._updating = False
        self._update_buttons()

    def current_name(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def _update_buttons(self) -> None:
        has = self.current_name() is not None
        for b in (self.rename_button, self.delete_button, self.reenroll_button):
            b.setEnabled(has)

    # -- actions (the *_profile methods do the work; the slots only ask the user) --

    def set_authorized(self, name: str, flag: bool) -> None:
        self._apply(self.store.set_authorized, name, flag)

    def rename_profile(self, old: str, new: str) -> None:
        self._apply(self.store.rename, old, new)

    def delete_profile(self, name: str) -> None:
        self._apply(self.store.delete, name)

    def _apply(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except (VoxgateError, OSError, ValueError, KeyError) as exc:
            self.error.emit(str(exc))
        self.refresh()
        self.changed.emit()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        self.set_authorized(name, item.checkState() == Qt.CheckState.Checked)

    def _on_rename(self) -> None:
        name = self.current_name()
        if name is None:
            return
        new, ok = QInputDialog.getText(self, "Rename profile", "New name:", text=name)
        if ok and new.strip() and new.strip() != name:
            self.rename_profile(name, new.strip())

    def _on_delete(self) -> None:
        name = self.current_name()
        if name is None:
            return
        answer = QMessageBox.question(
            self, "Delete profile", f"Delete the voice profile of {name}?"
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_profile(name)

    def _on_reenroll(self) -> None:
        name = self.current_name()
        if name is None:
            return
        item = self.item(name)
        self.reenroll_requested.emit(name, item.checkState() == Qt.CheckState.Checked)
