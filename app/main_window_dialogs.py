"""The main window's dialogs and message boxes: enroll, settings, retrain, dataset, about."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMessageBox

from .enroll_dialog import EnrollDialog, choose_audio_files


class WindowDialogs:
    """Mixed into MainWindow (uses its input panel, settings, scoring panel, store, encoder,
    status bar and controller)."""

    def open_enroll_dialog(
        self, *, name: str = "", authorized: bool = True, browse: bool = False
    ) -> EnrollDialog | None:
        """Ask for name / authorized / input (non-blocking); enrollment starts on OK."""
        if self.controller.job is not None:
            return None
        dialog = EnrollDialog(
            self,
            name=name,
            authorized=authorized,
            microphone_available=self.input_panel.available,
        )
        dialog.accepted.connect(lambda: self._enroll_from_dialog(dialog))
        dialog.finished.connect(lambda _r: dialog.deleteLater())
        self.enroll_dialog = dialog
        dialog.open()
        if browse:
            dialog.browse_button.click()
        return dialog

    def _enroll_from_dialog(self, dialog: EnrollDialog) -> bool:
        """Start the enrollment the dialog describes; an existing name is replaced only
        after the user says so."""
        name, authorized, files = dialog.values()
        replace = False
        if self.store.exists(name):
            question = (
                f"A voice profile named {name!r} exists. Replace it with this enrollment? "
                "Its old voice will be gone."
            )
            if not self._ask("Replace voice profile?", question):
                self.statusBar().showMessage(f"kept the existing profile {name!r}", 8000)
                return False
            replace = True
        return self.controller.start_enroll(
            name, authorized, files, keep_audio=dialog.keep_audio, replace=replace
        )

    def choose_file_to_authenticate(self) -> None:
        paths = choose_audio_files(self, "Authenticate a recording", many=False)
        if paths:
            self.controller.start_file_authentication(paths[0])

    def open_settings_dialog(self) -> Any:
        from .settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        dialog.accepted.connect(lambda: self._apply_settings(dialog.apply()))
        dialog.open()
        return dialog

    def _apply_settings(self, values: dict[str, Any]) -> None:
        self.scoring_panel.passes.setValue(values["mc_passes"])
        self.controller.update_pipeline(
            hop_s=values["hop_s"],
            decision_s=values["decision_s"],
            vad_aggressiveness=values["vad_aggressiveness"],
        )

    def open_retrain_dialog(self) -> Any:
        from .retrain_dialog import RetrainDialog

        if self.retrain_dialog is None:
            current = str(self.encoder.meta.get("path") or "") if hasattr(self.encoder, "meta") else ""
            self.retrain_dialog = RetrainDialog(self, data=self.last_dataset, current_model=current)
            self.retrain_dialog.model_ready.connect(self.load_model)
        self.retrain_dialog.show()
        self.retrain_dialog.raise_()
        return self.retrain_dialog

    def open_dataset_dialog(self) -> Any:
        from .dataset_dialog import DatasetDialog

        if self.dataset_dialog is None:
            self.dataset_dialog = DatasetDialog(self)
            self.dataset_dialog.dataset_ready.connect(self._on_dataset_ready)
        self.dataset_dialog.show()
        self.dataset_dialog.raise_()
        return self.dataset_dialog

    def _on_dataset_ready(self, path: str) -> None:
        self.last_dataset = path
        if self.retrain_dialog is not None and not self.retrain_dialog.running:
            self.retrain_dialog.data_edit.setText(path)

    def show_about(self) -> None:
        from voxgate import __version__

        from .main_window import model_display_name

        QMessageBox.about(
            self,
            "About voxgate",
            f"<b>voxgate {__version__}</b><p>Real-time voice authentication with a "
            "CNN-RNN speaker model (log-mel, SE blocks, GRU, attention pooling, AAM softmax, "
            "MC-dropout uncertainty).</p>"
            f"<p>Model: {model_display_name(self.encoder)} on {self.encoder.device.type}</p>",
        )

    def show_data_location(self) -> None:
        QMessageBox.information(
            self,
            "Where is my data stored?",
            f"Voice profiles (one JSON file each, readable only by you):\n{self.store.root}\n\n"
            "Set VOXGATE_HOME to keep them elsewhere. Audio is not stored unless you opt in.",
        )

    def _ask(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question)
        return answer == QMessageBox.StandardButton.Yes

    def show_error(self, title: str, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=self)
        box.open()
