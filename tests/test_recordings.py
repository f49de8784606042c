"""training/recordings.py: one scanner, so dataset build and verification read a folder alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import voiced, write_wav
from voxgate.core.errors import DatasetError
from voxgate.training.recordings import collect_recordings, collect_sources, scan_source


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """ann: a file in a chapter and one two levels deeper; ben: a file at his top level;
    cid.wav: a recording directly in the folder; notes.txt: not audio."""
    root = tmp_path / "voices"
    wave = voiced(seconds=0.5)
    for sub, name in (("ann/ch1", "a0.wav"), ("ann/ch2/take2", "a1.wav"), ("ben", "b0.wav"),
                      (".", "cid.wav")):  # fmt: skip
        (root / sub).mkdir(parents=True, exist_ok=True)
        write_wav(root / sub, name, wave)
    (root / "notes.txt").write_text("not audio")
    return root


def test_folder_rules_speakers_and_sessions(folder: Path) -> None:
    got = {(s.speaker, s.session, s.path.name) for s in scan_source(folder)}
    assert got == {("ann", "ch1", "a0.wav"), ("ann", "ch2", "a1.wav"), ("ben", "", "b0.wav"),
                   ("cid", "", "cid.wav")}  # fmt: skip
    assert {s.corpus for s in scan_source(folder)} == {"voices"}


def test_build_and_verification_read_a_folder_alike(folder: Path) -> None:
    built = collect_sources([folder])
    by_speaker = collect_recordings(folder)
    assert sorted({s.speaker for s in built}) == list(by_speaker) == ["ann", "ben", "cid"]
    for spk, recs in by_speaker.items():
        assert sorted((r.path, r.session) for r in recs) == sorted(
            (s.path, s.session) for s in built if s.speaker == spk
        )
    assert [r.session for r in by_speaker["ann"]] == ["ch1", "ch2"]


def test_collect_sources_lists_each_file_once(folder: Path) -> None:
    two = collect_sources([folder, folder / "ann"])  # ann's files are found twice
    assert len(two) == 4 and len({s.path for s in two}) == 4
    assert {s.speaker for s in two} >= {"voices-ben", "voices-cid"}  # several SRCs: prefixed


def test_not_a_source_and_nothing_found(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(DatasetError, match="not a folder"):
        scan_source(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no audio recordings"):
        collect_recordings(folder, speakers=["nobody"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no audio files"):
        collect_sources([tmp_path / "empty"])


def test_linked_speaker_folders_are_followed(tmp_path: Path, folder: Path) -> None:
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "ann").symlink_to(folder / "ann", target_is_directory=True)
    assert sorted(s.session for s in scan_source(linked)) == ["ch1", "ch2"]
    assert list(collect_recordings(linked)) == ["ann"]
