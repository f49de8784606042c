"""Speaker ids and subset names: one rule for every command (docs/dataset.md).

A manifest row's speaker id is ``<corpus>-<speaker>`` whenever the row names a corpus
(``librispeech-1089``), and the plain ``speaker`` otherwise; a folder source's ids are its
speaker folder names (prefixed with the folder's own name only when ``dataset build`` mixes
several sources). ``dataset build``, ``dataset info``, ``evaluate --impostor-speakers``,
``evaluate-verification``, ``calibrate`` and the benchmarks all use these ids, and every
option that takes ids also accepts the plain id where it is unambiguous.
"""

from __future__ import annotations

__all__ = ["speaker_id", "subset_matches"]


def speaker_id(corpus: str, speaker: str) -> str:
    """The id of ``speaker`` of ``corpus`` ("" for none): ``corpus-speaker`` or ``speaker``."""
    corpus, speaker = corpus.strip(), speaker.strip()
    if not corpus or speaker.startswith(f"{corpus}-"):
        return speaker
    return f"{corpus}-{speaker}"


def subset_matches(corpus: str, subset: str, wanted: set[str] | frozenset[str]) -> bool:
    """True when a row of ``corpus``/``subset`` is selected by ``wanted`` subset names, each
    written ``subset`` or ``corpus/subset``."""
    return subset in wanted or f"{corpus}/{subset}" in wanted
