"""``voxgate profiles``: list, delete, authorize, rename and unlock voice profiles."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from voxgate.exitcodes import EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
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
    q = psub.add_parser("unlock", parents=[where], help="clear failed attempts (after a lockout)")
    who = q.add_mutually_exclusive_group(required=True)
    who.add_argument("name", nargs="?", help="the profile to unlock")
    who.add_argument("--device", action="store_true", help="any-profile / identification mode")
    who.add_argument("--all", action="store_true", help="every profile and the device")
    q.set_defaults(func=cmd_profiles_unlock)


def _store(args: argparse.Namespace) -> Any:
    from voxgate.core.profiles import ProfileStore

    return ProfileStore(args.profiles)


def cmd_profiles_list(args: argparse.Namespace) -> int:
    store = _store(args)
    profiles = store.list()
    for problem in store.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not profiles:
        print(f"no voice profiles in {store.root}")
        return EXIT_OK
    from voxgate.core.lockout import DEVICE_KEY, Lockout

    lock = Lockout(store)
    for p in profiles:
        auth = "authorized" if p.authorized else "not authorized"
        print(
            f"{p.name:24s} {auth:15s} {p.speech_s:6.1f} s speech  {p.n_windows:4d} windows  "
            f"model {p.model_fingerprint or '?'}  created {p.created}{_locked(lock, p.name)}"
        )
    device = _locked(lock, DEVICE_KEY)
    if device:
        print(f"{'(any profile / identification)':40s}{device}")
    return EXIT_OK


def _locked(lock: Any, key: str) -> str:
    """'  LOCKED: ...' when attempts on ``key`` are delayed or disabled, else ''."""
    st = lock.status(key)
    return f"  LOCKED: {st.describe()}" if st.disabled or st.wait_s > 0 else ""


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


def cmd_profiles_unlock(args: argparse.Namespace) -> int:
    from voxgate.core.lockout import DEVICE_KEY, Lockout

    store = _store(args)
    if args.name is not None:
        store.get(args.name)  # a typo must not look like success
    key = None if args.all else DEVICE_KEY if args.device else args.name
    Lockout(store).unlock(key)
    print(f"unlocked {'everything' if key is None else 'the device' if args.device else repr(key)}")
    return EXIT_OK
