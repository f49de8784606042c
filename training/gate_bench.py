"""FAR / FRR of the real gate, measured through the command line users run.

For each held-out set: every speaker is enrolled with ``voxgate enroll --file`` (its
enrollment speech written as WAV files), then for each enrolled speaker one
``voxgate verify --user NAME --json --scores --no-lockout --file CLIPS...`` process scores
every test clip of the set (3-s and 10-s clips of speech, WAV float32). A clip of the same
speaker is a genuine trial, any other an impostor trial. Every trial's decision and score is
saved (``trials.json``; scores do not depend on the threshold, so ``--reuse --threshold T``
recomputes the rates without re-running). Rates at the model's shipped threshold, with
Wilson 95 % intervals, go to ``<work>/gate_bench.json`` and are printed as a Markdown table
(docs/benchmarks.md).

    python -m voxgate.training.gate_bench --model models/voxgate-base.pt \\
        --manifest ../shared/data/manifest.csv --work work/gate-bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import soundfile as sf

from voxgate.core.fileio import atomic_write
from voxgate.training.calibration import Trial, prepare_clips, rates

SR = 16000
# (label, subsets, enrollment sessions): evaluation-only sets nobody trained or calibrated on.
SETS = (
    ("msc/heldout", ["msc/heldout"], None),
    ("emodb (neutral -> emotional)", ["emodb/eval"], ["neutral"]),
    ("fsdd (narrowband)", ["fsdd/eval"], None),
)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "voxgate", *args], capture_output=True, text=True, check=False
    )


def _write(folder: Path, name: str, wave: Any) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.wav"
    sf.write(path, wave, SR, subtype="FLOAT")
    return str(path)


def run_set(
    model: str, manifest: str, work: Path, subsets: list[str], sessions: Any, clip_s: float
) -> list[Trial]:
    cs = prepare_clips(manifest, subsets=subsets, clip_s=clip_s, enroll_sessions=sessions)
    store = work / "profiles"
    names = {}
    for i, (spk, waves) in enumerate(sorted(cs.enroll.items())):
        files = [_write(work / "enroll" / f"s{i}", f"{k}", w) for k, w in enumerate(waves)]
        res = _cli(
            "enroll",
            f"s{i}",
            "--model",
            model,
            "--profiles",
            str(store),
            "--force",
            "--file",
            *files,
        )
        if res.returncode == 0:
            names[f"s{i}"] = spk
        else:
            print(f"  not enrolled {spk}: {res.stderr.strip()}", file=sys.stderr)
    clip_files = {_write(work / "clips", f"c{k}", w): spk for k, (_, spk, w) in enumerate(cs.clips)}
    trials = []
    for profile, spk in names.items():
        res = _cli(
            "verify",
            "--model",
            model,
            "--profiles",
            str(store),
            "--user",
            profile,
            "--json",
            "--scores",
            "--no-lockout",
            "--file",
            *clip_files,
        )
        for line in res.stdout.splitlines():
            row = json.loads(line)
            decided = row["decision"] in ("accepted", "rejected")
            trials.append(
                Trial(
                    row["file"],
                    clip_files[row["file"]],
                    spk,
                    row["decision"],
                    row["score"] if decided else None,
                )
            )
    return trials


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="models/voxgate-base.pt")
    ap.add_argument("--manifest", default="../shared/data/manifest.csv")
    ap.add_argument("--work", type=Path, default=Path("work/gate-bench"))
    ap.add_argument("--clip-s", type=float, nargs="+", default=[3.0, 10.0])
    ap.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="rates at this threshold (default: the model's); with --reuse, no re-run",
    )
    ap.add_argument(
        "--reuse", action="store_true", help="recompute the rates from saved trials only"
    )
    args = ap.parse_args(argv)
    from voxgate.core.checkpoint import read_checkpoint

    threshold = args.threshold
    if threshold is None:
        threshold = float(read_checkpoint(args.model)["threshold"])
    out: dict[str, Any] = {"model": args.model, "threshold": threshold, "rows": []}
    pooled: dict[float, list[Trial]] = {}
    for clip_s in args.clip_s:
        for label, subsets, sessions in SETS:
            work = args.work / f"{subsets[0].replace('/', '-')}-{clip_s:g}s"
            saved = work / "trials.json"
            if args.reuse:
                trials = [Trial(**t) for t in json.loads(saved.read_text())]
            else:
                trials = run_set(args.model, args.manifest, work, subsets, sessions, clip_s)
                rows = [t.__dict__ for t in trials]
                atomic_write(saved, json.dumps(rows) + "\n")
            pooled.setdefault(clip_s, []).extend(trials)
            out["rows"].append({"set": label, "clip_s": clip_s, **rates(trials, threshold)})
            print(_row(out["rows"][-1]), flush=True)
        out["rows"].append(
            {"set": "all three", "clip_s": clip_s, **rates(pooled[clip_s], threshold)}
        )
        print(_row(out["rows"][-1]), flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    atomic_write(args.work / "gate_bench.json", json.dumps(out, indent=1) + "\n")
    return 0


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _row(r: dict[str, Any]) -> str:
    far_ci = r["far_ci95"] or [None, None]
    frr_ci = r["frr_ci95"] or [None, None]
    return (
        f"| {r['set']} | {r['clip_s']:g} s | {_pct(r['far'])} ({r['false_accepts']}/"
        f"{r['n_impostor']}; {_pct(far_ci[0])}–{_pct(far_ci[1])}) | {_pct(r['frr'])} "
        f"({r['false_rejects']}/{r['n_genuine']}; {_pct(frr_ci[0])}–{_pct(frr_ci[1])}) | "
        f"{r['undecided_genuine']} / {r['undecided_impostor']} |"
    )


if __name__ == "__main__":
    sys.exit(main())
