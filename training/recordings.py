"""The one recordings scanner: speaker folders and manifest CSVs, read with the same rules by
``dataset build``, ``evaluate-verification``, ``calibrate`` and ``evaluate --impostors``.

A folder holds one sub-folder per speaker, with audio (``core.audio.AUDIO_EXTENSIONS``) at
any depth below it; the first folder level below the speaker is the recording session
(LibriSpeech's ``<speaker>/<chapter>/file``), and an audio file directly in the folder is a
speaker of its own (its file stem), so a flat folder of recordings of different people works
too. A manifest CSV needs ``speaker`` and ``path`` columns (paths relative to the CSV) and
may have ``session``, ``corpus``, ``subset``, ``gender`` and ``duration_s``; speaker ids
follow ``training.speakers``.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from voxgate.core.errors import DatasetError

from .speakers import speaker_id, subset_matches

__all__ = ["SourceFile", "scan_source", "collect_sources", "collect_recordings"]


@dataclasses.dataclass
class SourceFile:
    """One source recording. ``speaker`` is the final (possibly corpus-prefixed) id;
    ``session`` the chapter / folder / manifest session ("" when unknown)."""

    path: Path
    speaker: str
    session: str = ""
    corpus: str = ""
    subset: str = ""
    gender: str = ""
    duration_s: float | None = None


def _scan_folder(root: Path) -> list[SourceFile]:
    """Audio files of ``root``: one sub-folder per speaker (its first folder level is the
    session; a linked speaker folder is followed); a file directly in ``root`` is its own
    speaker (the file stem)."""
    from voxgate.core.audio import AUDIO_EXTENSIONS

    def audio(f: Path) -> bool:
        return f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS

    out = []
    for entry in sorted(root.iterdir()):
        if audio(entry):
            out.append(SourceFile(entry, entry.stem, "", corpus=root.name))
        elif entry.is_dir():
            for f in sorted(filter(audio, entry.rglob("*"))):
                rel = f.relative_to(entry).parts
                session = rel[0] if len(rel) >= 2 else ""
                out.append(SourceFile(f, entry.name, session, corpus=root.name))
    return out


def _read_manifest(csv_path: Path, subsets: Sequence[str] | None) -> list[SourceFile]:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:  # -sig: Excel's BOM
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or ())
            missing = {"speaker", "path"} - cols
            if missing:
                raise DatasetError(f"{csv_path}: manifest lacks column(s) {sorted(missing)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{csv_path}: cannot read manifest: {exc}") from exc
    if subsets is not None and "subset" not in cols:
        raise DatasetError(f"{csv_path}: --subsets given but the manifest has no 'subset' column")
    out = []
    for i, row in enumerate(rows, start=2):
        spk, rel = (row.get("speaker") or "").strip(), (row.get("path") or "").strip()
        if not spk or not rel:
            raise DatasetError(f"{csv_path}:{i}: empty speaker or path")
        subset = (row.get("subset") or "").strip()
        corpus = (row.get("corpus") or "").strip()
        if subsets is not None and not subset_matches(corpus, subset, frozenset(subsets)):
            continue
        dur = (row.get("duration_s") or "").strip()
        try:
            duration = float(dur) if dur else None
        except ValueError:
            duration = None
        out.append(
            SourceFile(
                (csv_path.parent / rel),
                speaker_id(corpus, spk),
                (row.get("session") or "").strip(),
                corpus or csv_path.stem,
                subset,
                (row.get("gender") or "").strip(),
                duration,
            )
        )
    return out


def scan_source(src: str | Path, subsets: Sequence[str] | None = None) -> list[SourceFile]:
    """The recordings of one speaker folder or manifest CSV (``subsets``: manifest rows of
    these subsets only, each ``subset`` or ``corpus/subset``), in scan order.

    Raises DatasetError for anything else (a missing path, another file type) and for an
    unreadable manifest.
    """
    p = Path(src)
    if p.is_dir():
        return _scan_folder(p)
    if p.is_file() and p.suffix.lower() == ".csv":
        return _read_manifest(p, subsets)
    raise DatasetError(f"{p}: not a folder of speaker folders or a manifest .csv")


def collect_sources(
    srcs: Sequence[str | Path], subsets: Sequence[str] | None = None
) -> list[SourceFile]:
    """Read every SRC (speaker folder or manifest CSV) into one table sorted by
    (speaker, path), each file once.

    Speaker ids follow ``training.speakers``: a manifest row with a corpus is
    ``corpus-speaker``; folder ids get their folder's name as prefix when several SRCs mix.
    Raises DatasetError for a missing SRC or an empty result.
    """
    if not srcs:
        raise DatasetError("no source given")
    table = [s for src in srcs for s in scan_source(src, subsets)]
    if len(srcs) > 1:
        for s in table:
            s.speaker = speaker_id(s.corpus, s.speaker)
    seen: set[str] = set()
    unique = []
    for s in sorted(table, key=lambda s: (s.speaker, str(s.path))):
        key = os.path.normpath(str(s.path.absolute()))
        if key not in seen:
            seen.add(key)
            unique.append(s)
    if not unique:
        raise DatasetError(f"no audio files found in {', '.join(map(str, srcs))}")
    return unique


def collect_recordings(
    source: str | Path,
    *,
    subsets: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
) -> dict[str, list[SourceFile]]:
    """Recordings per speaker, each list sorted by (session, path); speakers sorted.

    ``source`` is a folder or a manifest CSV (:func:`scan_source`); ``subsets`` filters
    manifest rows on their subset (``subset`` or ``corpus/subset``); ``speakers`` keeps only
    those ids. Raises DatasetError when nothing is left.
    """
    recs: dict[str, list[SourceFile]] = {}
    for r in scan_source(source, subsets):
        recs.setdefault(r.speaker, []).append(r)
    if speakers is not None:
        keep = set(speakers)
        recs = {k: v for k, v in recs.items() if k in keep}
    if not recs:
        raise DatasetError(f"{source}: no audio recordings found (subsets={list(subsets or [])})")
    return {k: sorted(v, key=lambda r: (r.session, str(r.path))) for k, v in sorted(recs.items())}
