"""Switching to a new model: which profiles survive it, and re-embedding their kept recordings
on a worker thread (a profile is only valid for the model that made it)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from voxgate.core.errors import VoxgateError


@dataclass(frozen=True)
class SwitchPlan:
    """Profile names that can be re-embedded from a kept recording, and those that cannot."""

    reembed: list[str]
    reenroll: list[str]


def plan_switch(store: Any, encoder: Any) -> SwitchPlan:
    """Split the profiles that ``encoder`` cannot use by whether their recording was kept."""
    reembed, reenroll = [], []
    for profile in store.list():
        if store.is_compatible(profile, encoder):
            continue
        kept = store.audio_path_for(profile.name).is_file()
        (reembed if kept else reenroll).append(profile.name)
    return SwitchPlan(reembed, reenroll)


def reembed_profile(encoder: Any, store: Any, name: str) -> Any:
    """Enroll ``name`` again with ``encoder`` from its kept WAV; keeps the WAV and the
    authorized flag. Returns the new Profile. Raises VoxgateError."""
    from voxgate.core.enroll import enroll_from_files

    old = store.get(name)
    wav = store.audio_path_for(name)
    profile = enroll_from_files(
        encoder, [wav], name, authorized=old.authorized, store=store, replace=True
    )
    if profile.recording != wav.name:  # the WAV stays: note it in the new profile
        profile.recording = wav.name
        store.save(profile)
    return profile


class ReembedWorker(QObject):
    """Re-embeds ``names`` one after another; ``progress(name, done, total)``, then
    ``finished(done names, failure messages)``. ``stop()`` ends it after the current one.
    Runs in a ``worker.WorkerHandle``."""

    progress = Signal(str, int, int)
    finished = Signal(list, list)

    def __init__(self, encoder: Any, store: Any, names: list[str]):
        super().__init__()
        self.encoder, self.store, self.names = encoder, store, list(names)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @Slot()
    def run(self) -> None:
        done: list[str] = []
        failed: list[str] = []
        for i, name in enumerate(self.names):
            if self._stop.is_set():
                break
            self.progress.emit(name, i, len(self.names))
            try:
                reembed_profile(self.encoder, self.store, name)
                done.append(name)
            except (VoxgateError, OSError) as exc:
                failed.append(f"{name}: {exc}")
        self.finished.emit(done, failed)
