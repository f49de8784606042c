"""Live commands: devices, enroll, verify, identify.

Exit codes: see ``voxgate.exitcodes`` (0 accepted / known, 3 rejected / unknown, 4 undecided,
5 locked out, 1 error, 2 usage). ``verify`` and ``identify`` print the decision, not the
score: an exact score on every try would let an attacker climb towards the threshold.
``--scores`` shows them (for evaluation).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from voxgate.exitcodes import (
    EXIT_ERROR,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_UNDECIDED,
    TABLE,
)

# The worst outcome of several files decides the exit code.
_SEVERITY = (EXIT_OK, EXIT_UNDECIDED, EXIT_REJECTED, EXIT_LOCKED, EXIT_ERROR)


def register(subparsers: argparse._SubParsersAction) -> None:
    from voxgate.core.live_config import DEFAULT_HOP_S

    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("model and profiles")
    g.add_argument("--model", metavar="M", help="checkpoint (default: the shipped model)")
    g.add_argument("--untrained", action="store_true", help="a random model (try the plumbing)")
    g.add_argument("--profiles", metavar="DIR", help="profile directory (default: user data dir)")
    g.add_argument("--mc-passes", type=int, default=0, metavar="N", help="MC-dropout passes")
    g.add_argument("--threshold", type=float, default=None, metavar="T", help="score threshold")
    g.add_argument("--device", default=None, help="input device (index or name part) for --mic")

    p = subparsers.add_parser("devices", help="list audio input devices")
    p.set_defaults(func=cmd_devices)

    p = subparsers.add_parser("enroll", parents=[common], help="enroll a voice profile")
    p.add_argument("name")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", nargs="+", metavar="F", help="enroll from recordings")
    src.add_argument("--mic", action="store_true", help="enroll from the microphone")
    p.add_argument("--seconds", type=float, default=20.0, help="speech to collect (--mic)")
    p.add_argument("--not-authorized", action="store_true", help="known but not authorized")
    p.add_argument("--keep-audio", action="store_true", help="keep the enrollment recording")
    p.add_argument("--force", action="store_true", help="replace an existing profile")
    p.set_defaults(func=cmd_enroll)

    for name, help_text in (
        ("verify", "is this an authorized voice? (exit 0 accepted, 3 rejected, 4 undecided)"),
        ("identify", "who is speaking? (exit 0 known, 3 unknown, 4 undecided)"),
    ):
        p = subparsers.add_parser(
            name,
            parents=[common],
            help=help_text,
            epilog=TABLE,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--file", nargs="+", metavar="F", help="recordings, one attempt each")
        src.add_argument("--mic", action="store_true", help="the microphone: one attempt")
        if name == "verify":
            p.add_argument("--user", metavar="NAME", help="verify against this profile only")
        p.add_argument("--realtime", action="store_true", help="pace a file in real time")
        p.add_argument("--hop-s", type=float, default=DEFAULT_HOP_S, help="s between windows")
        p.add_argument("--json", action="store_true", help="one JSON object per file")
        p.add_argument("--scores", action="store_true", help="also print scores (evaluation)")
        p.add_argument(
            "--head",
            action="store_true",
            help="use the model's trained head (closed set; only for a model trained on the "
            "enrolled, authorized speakers)",
        )
        p.add_argument(
            "--no-lockout",
            action="store_true",
            help="offline evaluation of recordings (--file only): attempts are not counted",
        )
        p.set_defaults(func=cmd_verify if name == "verify" else cmd_identify)


# -- helpers -------------------------------------------------------------------------------


def _store(args: argparse.Namespace) -> Any:
    from voxgate.core.profiles import ProfileStore

    return ProfileStore(args.profiles)


def _encoder(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from voxgate.core.errors import CheckpointError
    from voxgate.core.inference import SpeakerEncoder, default_model_path

    if args.untrained:
        return SpeakerEncoder.untrained()  # seeded: the same random model every time
    path = args.model or default_model_path()
    if not Path(path).is_file():
        raise CheckpointError(
            f"no model at {path}: train one (voxgate train ...), pass --model PATH, "
            "or use --untrained to try the plumbing with a random model"
        )
    return SpeakerEncoder.from_checkpoint(path)


def _pipeline(args: argparse.Namespace, **config: Any) -> Any:
    from voxgate.core.live_config import DEFAULT_HOP_S
    from voxgate.core.pipeline import Pipeline, PipelineConfig

    hop_s = getattr(args, "hop_s", DEFAULT_HOP_S)  # enrollment has its own (ENROLL_HOP_S)
    cfg = PipelineConfig(hop_s=hop_s, mc_passes=args.mc_passes, threshold=args.threshold, **config)
    return Pipeline(_encoder(args), _store(args), cfg, display_hop_s=None)  # no spectrogram here


def _source(args: argparse.Namespace, path: str | None) -> Any:
    from voxgate.core.microphone import MicrophoneSource
    from voxgate.core.sources import FileSource

    if path is not None:
        return FileSource(path, realtime=getattr(args, "realtime", False))
    return MicrophoneSource(args.device)


class _Notes:
    """Prints status messages to stderr; the device note only when its counts change."""

    def __init__(self) -> None:
        self.counts = (0, 0)

    def show(self, ev: Any) -> None:
        from voxgate.core.events import LIFECYCLE_MESSAGES

        if ev.message and ev.message not in LIFECYCLE_MESSAGES:
            print(f"note: {ev.message}", file=sys.stderr)
        counts = (ev.overflows, ev.drops)
        if counts != self.counts and any(counts):
            print(f"note: {counts[0]} input overflows, {counts[1]} dropped blocks", file=sys.stderr)
        self.counts = counts


# -- commands ------------------------------------------------------------------------------


def cmd_devices(args: argparse.Namespace) -> int:
    from voxgate.core.errors import NoInputDeviceError
    from voxgate.core.input_devices import list_input_devices

    devices = list_input_devices()  # PortAudioMissingError -> clear message, exit 1 (cli.main)
    if not devices:
        raise NoInputDeviceError("no audio input device found; use --file to analyse recordings")
    for d in devices:
        mark = "*" if d.is_default else " "
        print(f"{mark} [{d.index}] {d.name}  ({d.channels} ch, {d.default_samplerate:.0f} Hz)")
    return EXIT_OK


def cmd_enroll(args: argparse.Namespace) -> int:
    from voxgate.core.errors import ProfileError
    from voxgate.core.events import EnrolledEvent, EnrollProgressEvent, StatusEvent

    store = _store(args)
    if store.exists(args.name) and not args.force:
        raise ProfileError(f"a profile named {args.name!r} exists; use --force to replace it")
    authorized = not args.not_authorized
    if args.file:
        from voxgate.core.enroll import enroll_from_files

        profile = enroll_from_files(
            _encoder(args),
            args.file,
            args.name,
            authorized=authorized,
            store=store,
            keep_audio=args.keep_audio,
            replace=args.force,
        )
        print(
            f"enrolled {profile.name!r} from {len(args.file)} file(s): {profile.speech_s:.1f} s "
            f"of speech, {profile.n_windows} windows, consistency "
            f"{profile.quality['mean_cos']:.3f}; saved to {store.path_for(profile.name)}"
        )
        return EXIT_OK
    pipeline = _pipeline(args, enroll_target_s=args.seconds)
    last_line = ""
    notes = _Notes()
    for ev in pipeline.enroll(
        _source(args, None),
        args.name,
        authorized=authorized,
        keep_audio=args.keep_audio,
        replace=args.force,
    ):
        if isinstance(ev, StatusEvent):
            if ev.error:
                print(f"voxgate: error: {ev.error}", file=sys.stderr)
                return EXIT_ERROR
            notes.show(ev)
        elif isinstance(ev, EnrollProgressEvent):
            line = f"{ev.fraction * 100:5.1f}%  {ev.speech_s:5.1f}/{ev.target_s:.0f} s"
            if ev.feedback:
                line += "  (" + ", ".join(ev.feedback) + ")"
            if line != last_line:
                print(line, flush=True)
                last_line = line
        elif isinstance(ev, EnrolledEvent):
            print(f"enrolled {ev.profile.name!r}: saved to {ev.path}")
            return EXIT_OK
    print("voxgate: error: enrollment did not finish", file=sys.stderr)
    return EXIT_ERROR


def _outcome(pipeline: Any, source: Any, name: str, notes: _Notes, live: bool) -> dict[str, Any]:
    """Run one attempt; returns the result record (``exit`` = its exit code)."""
    from voxgate.core.events import DecisionEvent, StatusEvent

    rec: dict[str, Any] = {"file": name}
    last_state = None
    try:
        for ev in pipeline.run(source):
            if isinstance(ev, StatusEvent):
                if ev.error:
                    locked = bool(ev.extra.get("locked"))
                    rec.update(error=ev.error, exit=EXIT_LOCKED if locked else EXIT_ERROR)
                    return rec
                notes.show(ev)
            elif live and isinstance(ev, DecisionEvent) and ev.state.value != last_state:
                print(f"[{ev.t_s:7.2f} s] {ev.state.value}", flush=True)
                last_state = ev.state.value
    except KeyboardInterrupt:
        pipeline.stop()
    att = pipeline.attempt
    v = att.verdict
    final = v is not None and v.state.value in ("accepted", "rejected")
    rec.update(
        decision=v.state.value if final else "undecided",
        who=v.who if final else None,
        speech_s=round(att.speech_s, 3),
        windows=att.windows_scored,
        score=None if v is None else v.score,
        threshold=None if v is None else v.threshold,
    )
    codes = {"accepted": EXIT_OK, "rejected": EXIT_REJECTED, "undecided": EXIT_UNDECIDED}
    rec["exit"] = codes[rec["decision"]]
    return rec


def _verdict_text(rec: dict[str, Any], mode: str, scores: bool) -> str:
    if "error" in rec:
        return f"{'LOCKED' if rec['exit'] == EXIT_LOCKED else 'ERROR'}: {rec['error']}"
    d, who = rec["decision"], rec["who"]
    if d == "undecided":
        text = "NO DECISION (not enough voiced speech, or uncertain)"
    elif mode == "identification":
        text = (
            f"known: {who}" if d == "accepted" else (f"not authorized: {who}" if who else "unknown")
        )
    else:
        text = f"ACCEPTED {who}" if d == "accepted" else "REJECTED"
    text += f" ({rec['speech_s']:.1f} s of speech)"
    if scores and rec.get("score") is not None:
        text += f" score {rec['score']:.3f} threshold {rec['threshold']:.3f}"
    return text


def _live(args: argparse.Namespace, mode: str, user: str | None) -> int:
    from voxgate.core.errors import ConfigError

    if args.no_lockout and not args.file:
        raise ConfigError("--no-lockout is for offline evaluation of --file recordings only")
    if args.head:
        mode = f"head-{mode}"
    pipeline = _pipeline(args, mode=mode, user=user, lockout=not args.no_lockout)
    notes = _Notes()
    worst = EXIT_OK
    targets = args.file or [None]
    for path in targets:
        source = _source(args, path)
        rec = _outcome(pipeline, source, path or str(source.name), notes, live=not args.file)
        worst = max(worst, rec["exit"], key=_SEVERITY.index)
        if args.json:
            shown = {k: v for k, v in rec.items() if k != "exit"}
            if not args.scores:
                shown.pop("score", None)
                shown.pop("threshold", None)
            print(json.dumps(shown), flush=True)
        elif "error" in rec and len(targets) == 1:
            print(f"voxgate: error: {rec['error']}", file=sys.stderr)
        else:
            prefix = f"{path}: " if len(targets) > 1 else "verdict: "
            print(prefix + _verdict_text(rec, mode.replace("head-", ""), args.scores))
    return worst


def cmd_verify(args: argparse.Namespace) -> int:
    return _live(args, "authentication", args.user)


def cmd_identify(args: argparse.Namespace) -> int:
    return _live(args, "identification", None)
