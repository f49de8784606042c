"""Self-describing checkpoints: a plain dict that rebuilds its own model, loaded strictly.

Only plain types (dict, list, str, int, float, bool, None, tensors) go in, so
``torch.load(weights_only=True)`` reads it without unpickling arbitrary objects.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import FeatureConfig
from .errors import CheckpointError, ConfigError
from .fileio import atomic_write
from .model import ModelConfig, SpeakerNet

__all__ = [
    "checkpoint_fingerprint",
    "check_config_bounds",
    "CONFIG_BOUNDS",
    "SCHEMA_VERSION",
    "META_FIELDS",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "update_checkpoint",
    "model_fingerprint",
    "unwrap_model",
    "clean_state_dict",
    "make_meta",
    "to_plain",
]

SCHEMA_VERSION = 1
# Everything in a checkpoint except schema_version and model_state.
META_FIELDS = (
    "model_config",
    "feature_config",
    "mode",
    "labels",
    "authorized",
    "threshold",
    "calibration",
    "metrics",
    "train_config",
    "data_fingerprint",
    "created",
)
_REQUIRED = ("schema_version", "model_config", "feature_config", "model_state")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DataParallel/DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def clean_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copy of ``state`` on CPU with ``module.`` / ``_orig_mod.`` key prefixes removed."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value.detach().cpu().clone()
    return out


def model_fingerprint(model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """sha256 over the sorted (name, dtype, shape, bytes) of the weights: first 16 hex chars."""
    if isinstance(model_or_state, nn.Module):
        state = unwrap_model(model_or_state).state_dict()
    else:
        state = model_or_state
    state = clean_state_dict(state)
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def checkpoint_fingerprint(
    model_or_state: nn.Module | Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> str:
    """What profiles are tied to: sha256 over the weights, the architecture and the decision
    block (threshold, calibration) of a checkpoint; first 16 hex chars.

    Editing the threshold or calibration of a checkpoint (``threshold: -1`` would accept
    everyone) gives another fingerprint, so no existing profile matches it any more.
    """
    decision = {
        "model_config": meta.get("model_config"),
        "threshold": meta.get("threshold"),
        "calibration": meta.get("calibration"),
    }
    text = json.dumps(to_plain(decision, json_safe=True), sort_keys=True, default=str)
    h = hashlib.sha256(model_fingerprint(model_or_state).encode())
    h.update(text.encode())
    return h.hexdigest()[:16]


# Architecture bounds checked before anything is allocated (a tampered config must not make
# the loader reserve gigabytes): generous for any speaker model voxgate trains.
CONFIG_BOUNDS = {
    "n_mels": 512,
    "channel": 2048,
    "n_channels": 8,
    "se_reduction": 1024,
    "gru_hidden": 4096,
    "gru_layers": 8,
    "attention_dim": 4096,
    "embed_dim": 4096,
    "head_classes": 100_000,
    "n_heads": 4,
}


def check_config_bounds(cfg: Mapping[str, Any]) -> None:
    """ConfigError when a stored model_config asks for more than :data:`CONFIG_BOUNDS`."""
    b = CONFIG_BOUNDS

    def big(value: Any, limit: int) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit

    for key in ("n_mels", "se_reduction", "gru_hidden", "gru_layers", "attention_dim", "embed_dim"):
        if big(cfg.get(key), b[key]):
            raise ConfigError(f"model_config.{key} = {cfg[key]} exceeds {b[key]}")
    channels = cfg.get("channels") or []
    if len(channels) > b["n_channels"] or any(big(c, b["channel"]) for c in channels):
        raise ConfigError(f"model_config.channels {channels!r:.80} exceeds the bounds")
    heads = cfg.get("heads") or []
    if len(heads) > b["n_heads"] or any(
        isinstance(h, (list, tuple)) and len(h) == 2 and big(h[1], b["head_classes"])
        for h in heads
    ):
        raise ConfigError(f"model_config.heads {heads!r:.80} exceed {b['head_classes']} classes")


def _check_shapes(path: Path, cfg: ModelConfig, state: Mapping[str, Any]) -> None:
    """Compare the stored tensors with the shapes ``cfg`` implies, built on the meta device
    (no memory), so a config that does not fit its weights is refused before allocation."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in SpeakerNet(cfg).state_dict().items()}
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: model_state is not a mapping of tensors")
    for key, shape in expected.items():
        t = state.get(key)
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise CheckpointError(
                f"{path}: weights do not match the stored model config ({key}: {got} "
                f"stored, {shape} expected)"
            )


def to_plain(value: Any, *, json_safe: bool = False, where: str = "value") -> Any:
    """Recursively convert numpy scalars/arrays, tuples and paths to plain Python types.

    Default (checkpoint metadata): torch tensors are kept, dict keys must be str or int and
    NaN/inf floats are kept. ``json_safe=True`` (metrics files): keys become str, tensors
    become lists and NaN/inf floats become None, so ``json.dumps(allow_nan=False)`` accepts
    the result. Raises TypeError naming ``where`` for any other object.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if not json_safe or math.isfinite(value) else None
    if isinstance(value, torch.Tensor) and not json_safe:
        return value
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return to_plain(value.tolist(), json_safe=json_safe, where=where)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if json_safe:
                k = str(k)
            elif not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            out[k] = to_plain(v, json_safe=json_safe, where=f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [
            to_plain(v, json_safe=json_safe, where=f"{where}[{i}]") for i, v in enumerate(value)
        ]
    raise TypeError(
        f"{where}: {type(value).__name__} is not a plain type (dict, list, str, int, float, tensor)"
    )


def _plain_meta(value: Any, where: str) -> Any:
    """:func:`to_plain` for checkpoint metadata; raises CheckpointError instead of TypeError."""
    try:
        return to_plain(value, where=where)
    except TypeError as exc:
        raise CheckpointError(str(exc)) from None


def make_meta(
    model_config: ModelConfig,
    feature_config: FeatureConfig,
    *,
    mode: str = "authentication",
    labels: Mapping[str, list[str]] | None = None,
    authorized: list[str] | None = None,
    threshold: float | None = None,
    calibration: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    train_config: Mapping[str, Any] | None = None,
    data_fingerprint: str = "",
) -> dict[str, Any]:
    """The checkpoint's metadata as a plain dict (every field of META_FIELDS)."""
    if feature_config.n_mels != model_config.n_mels:
        raise CheckpointError(
            f"feature_config.n_mels ({feature_config.n_mels}) != model_config.n_mels "
            f"({model_config.n_mels})"
        )
    meta = {
        "model_config": model_config.to_dict(),
        "feature_config": feature_config.to_dict(),
        "mode": str(mode),
        "labels": dict(labels or {}),
        "authorized": list(authorized or []),
        "threshold": None if threshold is None else float(threshold),
        "calibration": dict(calibration or {}),
        "metrics": dict(metrics or {}),
        "train_config": dict(train_config or {}),
        "data_fingerprint": str(data_fingerprint),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return _plain_meta(meta, "checkpoint")


def _atomic_save(obj: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: torch.save(obj, fh))


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    feature_config: FeatureConfig,
    mode: str,
    labels: dict[str, list[str]],
    authorized: list[str],
    threshold: float | None,
    calibration: dict,
    metrics: dict,
    train_config: dict,
    data_fingerprint: str,
) -> None:
    """Write ``model`` and its metadata to ``path`` atomically (tmp file + os.replace).

    The model may be wrapped (DDP, torch.compile); the unwrapped weights are saved on CPU.
    """
    path = Path(path)
    net = unwrap_model(model)
    cfg = getattr(net, "config", None)
    if not isinstance(cfg, ModelConfig):
        raise CheckpointError(f"{path}: model has no ModelConfig (.config); not a SpeakerNet")
    ckpt: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    ckpt.update(
        make_meta(
            cfg,
            feature_config,
            mode=mode,
            labels=labels,
            authorized=authorized,
            threshold=threshold,
            calibration=calibration,
            metrics=metrics,
            train_config=train_config,
            data_fingerprint=data_fingerprint,
        )
    )
    ckpt["model_state"] = clean_state_dict(net.state_dict())
    _atomic_save(ckpt, path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, validated (weights_only load, schema version, required keys)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a loadable voxgate checkpoint (weights-only load refused: {first})"
        ) from exc
    if not isinstance(ckpt, dict) or "schema_version" not in ckpt:
        raise CheckpointError(f"{path}: not a voxgate checkpoint (no schema_version)")
    if ckpt["schema_version"] != SCHEMA_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint schema version {ckpt['schema_version']!r} is not supported "
            f"(this voxgate reads version {SCHEMA_VERSION})"
        )
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    return ckpt


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[SpeakerNet, dict[str, Any]]:
    """Rebuild the model from the file alone and load its weights strictly.

    Returns (model in eval mode on ``map_location``, meta: every field except model_state).
    Raises CheckpointError (with the path and the reason) for any problem.
    """
    path = Path(path)
    ckpt = read_checkpoint(path, map_location="cpu")
    try:
        if isinstance(ckpt["model_config"], Mapping):
            check_config_bounds(ckpt["model_config"])
        cfg = ModelConfig.from_dict(ckpt["model_config"])
        feat = FeatureConfig.from_dict(ckpt["feature_config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: invalid configuration in checkpoint: {exc}") from exc
    if feat.n_mels != cfg.n_mels:
        raise CheckpointError(f"{path}: feature n_mels {feat.n_mels} != model n_mels {cfg.n_mels}")
    _check_shapes(path, cfg, ckpt["model_state"])
    model = SpeakerNet(cfg)
    try:
        model.load_state_dict(ckpt["model_state"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{path}: weights do not match the stored model config: {exc}"
        ) from exc
    model.to(map_location).eval()
    meta = {k: v for k, v in ckpt.items() if k != "model_state"}
    return model, meta


def update_checkpoint(path: str | Path, **fields: Any) -> None:
    """Rewrite metadata fields (e.g. threshold, calibration, metrics) atomically.

    Only names in META_FIELDS are accepted; values must be plain (numpy scalars are converted).
    """
    path = Path(path)
    unknown = sorted(set(fields) - set(META_FIELDS))
    if unknown:
        raise CheckpointError(f"{path}: cannot update {unknown}; updatable: {list(META_FIELDS)}")
    if "model_config" in fields:
        raise CheckpointError(f"{path}: model_config cannot change without new weights")
    ckpt = read_checkpoint(path)
    for key, value in fields.items():
        ckpt[key] = _plain_meta(value, key)
    if "threshold" in fields and ckpt["threshold"] is not None:
        ckpt["threshold"] = float(ckpt["threshold"])
    if "feature_config" in fields:
        try:
            FeatureConfig.from_dict(ckpt["feature_config"])
        except ConfigError as exc:
            raise CheckpointError(f"{path}: invalid feature_config: {exc}") from exc
    _atomic_save(ckpt, path)
