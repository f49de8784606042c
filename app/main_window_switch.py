"""The main window's model switching: load a checkpoint on a worker thread, ask when profiles
would need re-enrolling, re-embed kept recordings on a worker thread (see model_switch.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from .worker import WorkerHandle


class ModelSwitching:
    """Mixed into MainWindow (uses its store, settings, status bar, set_encoder, ask,
    show_error, profile_list, controller, model_job, reembed_job, model_switched,
    reembedded)."""

    def load_model(self, path: str | Path) -> bool:
        """Start loading the checkpoint at ``path`` on a worker thread; False when a switch is
        already under way. While it loads the window says so and nothing new can start.

        Once loaded, profiles with a kept recording are re-embedded with it (on a worker
        thread); when others would need re-enrolling, ask first. On failure (or No) say why
        and keep the current model. ``model_switched(bool)`` tells which it was."""
        from .model_loader import ModelLoader

        if self.model_job is not None:
            self.statusBar().showMessage("wait until the model is loaded", 4000)
            return False
        if self.reembed_job is not None:
            self.statusBar().showMessage("wait until the profiles are re-embedded", 4000)
            return False
        loader = ModelLoader(str(path))
        # bound methods only: a lambda would run on the worker thread and touch widgets there
        loader.loaded.connect(self._on_model_loaded)
        loader.failed.connect(self._on_model_failed)
        self.model_job = WorkerHandle(loader, "voxgate-load-model")
        self._show_model(loading=Path(path).name)
        self.statusBar().showMessage(f"loading model {path}…")
        self.update_buttons()
        self.model_job.start()
        return True

    def _end_model_job(self) -> None:
        """Forget the loader, whose thread has finished or is finishing."""
        job, self.model_job = self.model_job, None
        if job is not None:
            job.release()
        self.update_buttons()

    def _on_model_failed(self, path: str, message: str) -> None:
        if self.model_job is None:  # the window closed meanwhile
            return
        self._end_model_job()
        self._show_model()
        self.show_error("Could not load the model", message)
        self.model_switched.emit(False)

    def _on_model_loaded(self, encoder: Any, path: str) -> None:
        from .model_switch import plan_switch

        if self.model_job is None:  # the window closed meanwhile
            return
        plan = plan_switch(self.store, encoder)
        switch = not plan.reenroll or self._ask_to_switch(plan.reenroll, plan.reembed)
        self._end_model_job()
        if not switch:
            self._show_model()
            self.statusBar().showMessage("kept the current model", 5000)
            self.model_switched.emit(False)
            return
        self.set_encoder(encoder, str(path))
        if plan.reembed:
            self._start_reembed(plan.reembed)
        self.model_switched.emit(True)

    def _ask_to_switch(self, reenroll: list[str], reembed: list[str]) -> bool:
        """Yes/No: switch although the ``reenroll`` profiles must be enrolled again?"""
        question = (
            f"{len(reenroll)} voice profile(s) have no kept recording and cannot be "
            f"used with the new model until they are enrolled again: {', '.join(reenroll)}."
            + (f"\n\n{len(reembed)} other(s) will be re-embedded from their kept "
               "recordings." if reembed else "")
            + "\n\nSwitch to the new model?"
        )  # fmt: skip
        return self.ask("Switch models", question)

    def _start_reembed(self, names: list[str]) -> None:
        from .model_switch import ReembedWorker

        worker = ReembedWorker(self.encoder, self.store, names)
        # bound methods only: a lambda would run on the worker thread and touch widgets there
        worker.progress.connect(self._on_reembed_progress)
        worker.finished.connect(self._on_reembed_finished)
        self.reembed_job = WorkerHandle(worker, "voxgate-reembed")
        self.update_buttons()
        self.reembed_job.start()

    def _on_reembed_progress(self, name: str, i: int, n: int) -> None:
        self.statusBar().showMessage(f"re-embedding {name} ({i + 1}/{n})…")

    def _on_reembed_finished(self, done: list[str], failed: list[str]) -> None:
        job, self.reembed_job = self.reembed_job, None
        if job is None:
            return
        job.thread.wait(5000)
        self.profile_list.refresh()
        self.update_buttons()
        self.controller.show_ready()
        text = f"re-embedded {len(done)} profile(s) with the new model"
        if failed:
            text += "; failed: " + "; ".join(failed)
        self.statusBar().showMessage(text, 10000)
        self.reembedded.emit(done, failed)

    def _join_model_jobs(self) -> None:
        """On close: wait for a checkpoint being read and stop re-embedding (its result is
        dropped: the window is going away)."""
        if self.model_job is not None:
            self.model_job.join(30000)
            self._end_model_job()
        if self.reembed_job is not None:
            self.reembed_job.join(30000)
            self._on_reembed_finished([], [])

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load model", "", "voxgate checkpoints (*.pt);;All files (*)"
        )
        if path:
            self.load_model(path)
