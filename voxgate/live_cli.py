"""Live commands: devices, enroll, verify, identify, profiles.

Exit codes: 0 success (``verify``: accepted; ``identify``: a known speaker), 1 error,
3 ``verify`` rejected / ``identify`` unknown speaker, 4 no decision (not enough speech, or
MC-dropout spread too wide: uncertain).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_REJECTED = 3
EXIT_UNDECIDED = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("model and profiles")
    g.add_argument("--model", metavar="M", help="checkpoint (default: the shipped model)")
    g.add_argument(
        "--untrained", action="store_true", help="use a random model (to try the plumbing)"
    )
    g.add_argument("--profiles", metavar="DIR", help="profile directory (default: user data dir)")
    g.add_argument("--mc-passes", type=int, default=0, metavar="N", help="MC-dropout passes")
    g.add_argument("--threshold", type=float, default=None, metavar="T", help="score threshold")
    g.add_argument("--hop-s", type=float, default=0.5, help="seconds between 1-s windows")
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
        p = subparsers.add_parser(name, parents=[common], help=help_text)
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--file", metavar="F", help="a recording")
        src.add_argument("--mic", action="store_true", help="the microphone (Ctrl-C to end)")
        if name == "verify":
            p.add_argument("--user", metavar="NAME", help="verify against this profile only")
        p.add_argument("--realtime", action="store_true", help="pace a file in real time")
        p.set_defaults(func=cmd_verify if name == "verify" else cmd_identify)

    p = subparsers.add_parser("profiles", help="list and manage voice profiles")
    p.add_argument("--profiles", metavar="DIR", help="profile directory")
    # --profiles is accepted after the action too (SUPPRESS keeps the outer value otherwise).
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--profiles", metavar="DIR", default=argparse.SUPPRESS)
    psub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = psub.add_parser("list", parents=[where], help="list profiles")
    q.set_defaults(func=cmd_profiles_list)
    q = psub.add_parser("delete", parents=[where], help="delete a profile")
    q.add_argument("name")
    q.set_defaults(func=cmd_profiles_delete)
    q = psub.add_parser("authorize", parents=[where], help="authorize a profile (--off to revoke)")
    q.add_argument("name")
    q.add_argument("--off", action="store_true")
    q.set_defaults(func=cmd_profiles_authorize)
    q = psub.add_parser("rename", parents=[where], help="rename a profile")
    q.add_argument("old")
    q.add_argument("new")
    q.set_defaults(func=cmd_profiles_rename)


# -- helpers -------------------------------------------------------------------------------


def _store(args: argparse.Namespace) -> Any:
    from voxgate.core.profiles import ProfileStore

    return ProfileStore(args.profiles)


def _encoder(args: argparse.Namespace) -> Any:
    from voxgate.core.errors import CheckpointError
    from voxgate.core.inference import SpeakerEncoder, default_model_path

    if args.untrained:
        return SpeakerEncoder.untrained()  # seeded: the same random model every time
    path = args.model or default_model_path()
    from pathlib import Path

    if not Path(path).is_file():
        raise CheckpointError(
            f"no model at {path}: train one (voxgate train ...), pass --model PATH, "
            "or use --untrained to try the plumbing with a random model"
        )
    return SpeakerEncoder.from_checkpoint(path)


def _pipeline(args: argparse.Namespace, **config: Any) -> Any:
    from voxgate.core.pipeline import Pipeline, PipelineConfig

    cfg = PipelineConfig(
        hop_s=args.hop_s, mc_passes=args.mc_passes, threshold=args.threshold, **config
    )
    return Pipeline(_encoder(args), _store(args), cfg)


def _source(args: argparse.Namespace, path: str | None) -> Any:
    from voxgate.core.sources import FileSource, MicrophoneSource

    if path is not None:
        return FileSource(path, realtime=getattr(args, "realtime", False))
    return MicrophoneSource(args.device)


def _print_status(ev: Any) -> int | None:
    """Print status messages/errors; returns EXIT_ERROR for an error."""
    if ev.error:
        print(f"voxgate: error: {ev.error}", file=sys.stderr)
        return EXIT_ERROR
    if ev.message and ev.message not in ("started", "finished", "stopped"):
        print(f"note: {ev.message}", file=sys.stderr)
    if ev.drops or ev.overflows:
        print(f"note: {ev.overflows} input overflows, {ev.drops} dropped blocks", file=sys.stderr)
    return None


def _describe(ev: Any) -> str:
    who = f" {ev.who}" if ev.who else ""
    score = "" if ev.score != ev.score else f" score {ev.score:.3f} (threshold {ev.threshold:.3f})"
    spread = f" ±{ev.spread:.3f}" if ev.spread else ""
    return f"[{ev.t_s:7.2f} s] {ev.state.value.upper()}{who}{score}{spread}"


# -- commands ------------------------------------------------------------------------------


def cmd_devices(args: argparse.Namespace) -> int:
    from voxgate.core.errors import NoInputDeviceError
    from voxgate.core.sources import list_input_devices

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

        encoder = _encoder(args)
        profile = enroll_from_files(
            encoder,
            args.file,
            args.name,
            authorized=authorized,
            store=store,
            keep_audio=args.keep_audio,
            hop_s=args.hop_s,
        )
        print(
            f"enrolled {profile.name!r} from {len(args.file)} file(s): {profile.speech_s:.1f} s "
            f"of speech, {profile.n_windows} windows, consistency "
            f"{profile.quality['mean_cos']:.3f}; saved to {store.path_for(profile.name)}"
        )
        return EXIT_OK
    pipeline = _pipeline(args, enroll_target_s=args.seconds)
    last_line = ""
    for ev in pipeline.enroll(
        _source(args, None), args.name, authorized=authorized, keep_audio=args.keep_audio
    ):
        if isinstance(ev, StatusEvent):
            if _print_status(ev) is not None:
                return EXIT_ERROR
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


def _live(args: argparse.Namespace, mode: str, user: str | None) -> int:
    from voxgate.core.decision import DecisionAggregator
    from voxgate.core.events import DecisionEvent, DecisionState, ScoreEvent, StatusEvent

    pipeline = _pipeline(args, mode=mode, user=user)
    source = _source(args, args.file)
    last_state = None
    last_decision = None
    scores: list[Any] = []
    try:
        for ev in pipeline.run(source):
            if isinstance(ev, StatusEvent):
                if _print_status(ev) is not None:
                    return EXIT_ERROR
            elif isinstance(ev, ScoreEvent):
                scores.append(ev)
            elif isinstance(ev, DecisionEvent):
                if ev.state != DecisionState.LISTENING:
                    last_decision = ev
                key = (ev.state, ev.who)
                if key != last_state:
                    print(_describe(ev), flush=True)
                    last_state = key
    except KeyboardInterrupt:
        pipeline.stop()
    final = last_decision
    if args.file and scores:
        # A whole recording: one decision over all of its scored windows.
        agg = DecisionAggregator(
            len(scores),
            scores[-1].threshold,
            k_min=1,
            uncertain_std=pipeline.config.uncertain_std,
            mode=mode,
            max_gap_s=float("inf"),
        )
        for sc in scores:
            final = agg.push(sc)
    if final is None:
        print("verdict: NO DECISION (not enough speech)")
        return EXIT_UNDECIDED
    print(f"verdict: {_describe(final).split('] ', 1)[1]} over {final.n_windows} windows")
    if final.state == DecisionState.ACCEPTED:
        return EXIT_OK
    if final.state == DecisionState.UNCERTAIN:
        return EXIT_UNDECIDED
    return EXIT_REJECTED


def cmd_verify(args: argparse.Namespace) -> int:
    return _live(args, "authentication", args.user)


def cmd_identify(args: argparse.Namespace) -> int:
    return _live(args, "identification", None)


def cmd_profiles_list(args: argparse.Namespace) -> int:
    store = _store(args)
    profiles = store.list()
    for problem in store.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not profiles:
        print(f"no voice profiles in {store.root}")
        return EXIT_OK
    for p in profiles:
        auth = "authorized" if p.authorized else "not authorized"
        print(
            f"{p.name:24s} {auth:15s} {p.speech_s:6.1f} s speech  {p.n_windows:4d} windows  "
            f"model {p.model_fingerprint or '?'}  created {p.created}"
        )
    return EXIT_OK


def cmd_profiles_delete(args: argparse.Namespace) -> int:
    _store(args).delete(args.name)
    print(f"deleted {args.name!r}")
    return EXIT_OK


def cmd_profiles_authorize(args: argparse.Namespace) -> int:
    p = _store(args).set_authorized(args.name, not args.off)
    print(f"{p.name!r} is {'authorized' if p.authorized else 'not authorized'}")
    return EXIT_OK


def cmd_profiles_rename(args: argparse.Namespace) -> int:
    p = _store(args).rename(args.old, args.new)
    print(f"renamed {args.old!r} to {p.name!r}")
    return EXIT_OK
