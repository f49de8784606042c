"""The main window's model switching: load a checkpoint, ask when profiles would need
re-enrolling, re-embed kept recordings on a worker thread (see model_switch.py)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from voxgate.core.errors import VoxgateError


class ModelSwitching:
    """Mixed into MainWindow (uses its store, settings, status bar, set_encoder, ask,
    show_error, profile_list, reembed_job, reembedded)."""

    def load_model(self, path: str | Path) -> bool:
        """Switch to the checkpoint at ``path``: profiles with a kept recording are re-embedded
        with it (on a worker thread); when others would need re-enrolling, ask first.
        On failure (or No) say why and keep the current model."""
        from voxgate.core.inference import SpeakerEncoder

        from .model_switch import plan_switch

        if self.reembed_job is not None:
            self.statusBar().showMessage("wait until the profiles are re-embedded", 4000)
            return False
        try:
            self.setCursor(Qt.CursorShape.WaitCursor)
            encoder = SpeakerEncoder.from_checkpoint(path)
        except VoxgateError as exc:
            self.show_error("Could not load the model", str(exc))
            return False
        finally:
            self.unsetCursor()
        plan = plan_switch(self.store, encoder)
        if plan.reenroll:
            names = ", ".join(plan.reenroll)
            question = (
                f"{len(plan.reenroll)} voice profile(s) have no kept recording and cannot be "
                f"used with the new model until they are enrolled again: {names}."
                + (f"\n\n{len(plan.reembed)} other(s) will be re-embedded from their kept "
                   "recordings." if plan.reembed else "")
                + "\n\nSwitch to the new model?"
            )  # fmt: skip
            if not self.ask("Switch models", question):
                self.statusBar().showMessage("kept the current model", 5000)
                return False
        self.set_encoder(encoder, str(path))
        if plan.reembed:
            self._start_reembed(plan.reembed)
        return True

    def _start_reembed(self, names: list[str]) -> None:
        from .model_switch import ReembedJob, ReembedWorker

        worker = ReembedWorker(self.encoder, self.store, names)
        # bound methods only: a lambda would run on the worker thread and touch widgets there
        worker.progress.connect(self._on_reembed_progress)
        worker.finished.connect(self._on_reembed_finished)
        self.reembed_job = ReembedJob(worker)
        self._update_buttons()
        self.reembed_job.start()

    def _on_reembed_progress(self, name: str, i: int, n: int) -> None:
        self.statusBar().showMessage(f"re-embedding {name} ({i + 1}/{n})…")

    def _on_reembed_finished(self, done: list[str], failed: list[str]) -> None:
        job, self.reembed_job = self.reembed_job, None
        if job is None:
            return
        job.thread.wait(5000)
        self.profile_list.refresh()
        self._update_buttons()
        self.show_ready()
        text = f"re-embedded {len(done)} profile(s) with the new model"
        if failed:
            text += "; failed: " + "; ".join(failed)
        self.statusBar().showMessage(text, 10000)
        self.reembedded.emit(done, failed)

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load model", "", "voxgate checkpoints (*.pt);;All files (*)"
        )
        if path:
            self.load_model(path)
