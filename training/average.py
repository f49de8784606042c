"""``voxgate average``: the weighted mean of checkpoints of one architecture (a "model soup").

Interpolating the weights of a fine-tuned model with those of the model it was fine-tuned
from (WiSE-FT, Wortsman et al., CVPR 2022) keeps what each learned that the other did not,
which helps on data neither was tuned on (docs/benchmarks.md). Every floating-point tensor
present with the same shape in all inputs is averaged; a tensor whose shape differs (an
identification head over another set of speakers) is taken from the first input, whose
labels and settings the result keeps. Its threshold and calibration are cleared: they
belong to other weights, so the result must be calibrated (``voxgate calibrate``) before
the client trusts it, and its heads are not used until then.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["average_checkpoints", "register"]


def _weights(weights: list[float] | None, n: int) -> list[float]:
    from voxgate.core.errors import ConfigError

    w = [1.0] * n if not weights else [float(x) for x in weights]
    if len(w) != n:
        raise ConfigError(f"--weights gives {len(w)} weights for {n} checkpoints")
    if any(not x > 0 for x in w):  # also refuses NaN
        raise ConfigError(f"--weights must be positive, got {w}")
    return [x / sum(w) for x in w]


def average_checkpoints(
    paths: list[str | Path], out: str | Path, weights: list[float] | None = None
) -> dict[str, Any]:
    """Write the weighted mean of ``paths`` (at least two) to ``out``; returns a summary:
    the inputs with their weights and the tensors taken from the first input only."""
    import torch

    from voxgate.core.checkpoint import (
        load_checkpoint,
        model_fingerprint,
        read_checkpoint,
        save_checkpoint,
    )
    from voxgate.core.config import FeatureConfig
    from voxgate.core.errors import ConfigError

    if len(paths) < 2:
        raise ConfigError("average needs at least two checkpoints")
    w = _weights(weights, len(paths))
    model, meta = load_checkpoint(paths[0])  # validated: it rebuilds its own model
    others = [read_checkpoint(p) for p in paths[1:]]
    for p, ck in zip(paths[1:], others):
        for key in ("feature_config", "model_config"):
            mine, theirs = dict(meta[key]), dict(ck[key])
            if key == "model_config":  # the heads may cover other speakers
                mine.pop("heads", None), theirs.pop("heads", None)
            if mine != theirs:
                raise ConfigError(f"{p}: its {key} differs from {paths[0]}'s; cannot average")
    prints = [model_fingerprint(model)] + [model_fingerprint(ck["model_state"]) for ck in others]
    state, first_only = model.state_dict(), []
    for name, tensor in state.items():
        if not torch.is_floating_point(tensor):
            continue  # counters (BatchNorm's num_batches_tracked) are the first input's
        parts = [ck["model_state"].get(name) for ck in others]
        if any(t is None or t.shape != tensor.shape for t in parts):
            first_only.append(name)
            continue
        mean = w[0] * tensor.double()
        for wi, t in zip(w[1:], parts):
            mean += wi * t.double()
        state[name] = mean.to(tensor.dtype)
    model.load_state_dict(state, strict=True)
    sources = [
        {"path": str(p), "weight": wi, "weights_fingerprint": fp}
        for p, wi, fp in zip(paths, w, prints)
    ]  # fmt: skip
    save_checkpoint(
        out, model, feature_config=FeatureConfig.from_dict(meta["feature_config"]),
        mode=meta["mode"], labels=meta["labels"], authorized=meta["authorized"],
        threshold=None, calibration={}, metrics={},
        train_config={**dict(meta["train_config"]), "averaged_from": sources,
                      "first_only": first_only},
        data_fingerprint=meta["data_fingerprint"],
    )  # fmt: skip
    return {"out": str(out), "inputs": sources, "first_only": first_only}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "average",
        help="average the weights of checkpoints of one architecture (then calibrate)",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("checkpoints", nargs="+", type=Path, help="two or more checkpoints")
    p.add_argument("--out", required=True, type=Path, help="the averaged checkpoint")
    p.add_argument("--weights", type=float, nargs="+", help="one per checkpoint (default equal)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    summary = average_checkpoints(args.checkpoints, args.out, args.weights)
    for src in summary["inputs"]:
        print(f"{src['weight']:.3f} x {src['path']}")
    if summary["first_only"]:
        print(f"from the first only (shapes differ): {', '.join(summary['first_only'])}")
    print(f"wrote {summary['out']} (uncalibrated: run voxgate calibrate before using it)")
    return 0
