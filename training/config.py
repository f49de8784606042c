"""Typed training configuration: defaults are the report's; unknown keys are errors."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from voxgate.core.config import dataclass_from_dict
from voxgate.core.errors import ConfigError

MODES = ("authentication", "identification", "both")
DEVICES = ("auto", "cpu", "cuda")
# Model fields the training wiring sets itself (from the data, --mode and the aam_* keys).
_MODEL_KEYS_SET_BY_TRAINING = frozenset({"n_mels", "heads", "aam_margin", "aam_scale"})


def default_num_workers() -> int:
    """2 DataLoader workers where the machine has more than one core, else 0 (in-process)."""
    return 2 if (os.cpu_count() or 1) > 1 else 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs besides the data path and the run directory.

    Defaults reproduce the report: AdamW (lr 1e-3, weight decay 1e-4), batch 256,
    30 epochs, early stopping after 5 epochs without a better validation macro-F1,
    CosineAnnealingLR with T_max 50 (in epochs; stepped once per epoch), cross-entropy
    over AAM-softmax logits, mixed precision.
    """

    mode: str = "authentication"  # authentication | identification | both
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    epochs: int = 30
    patience: int = 5  # epochs without a better val metric before stopping; 0 = never stop early
    cosine_t_max: int = 50  # CosineAnnealingLR period, in epochs
    seed: int = 0
    num_workers: int = dataclasses.field(default_factory=default_num_workers)
    pin_memory: bool | None = None  # None = when training on CUDA
    persistent_workers: bool | None = None  # None = when num_workers > 0
    cache_ram: bool = False  # read the whole split into RAM once
    train_augmented: bool = True  # also train on the augmented copies in the train split
    amp: bool = True  # bf16 autocast (CPU, CUDA with bf16) or fp16 + GradScaler (other CUDA)
    grad_clip: float = 5.0  # max global gradient L2 norm; 0 = no clipping
    model: dict = dataclasses.field(default_factory=dict)  # ModelConfig overrides
    aam_margin: float = 0.25
    aam_scale: float = 30.0
    balance: bool = True  # weighted sampler: authorized/outsider 50/50 (modes with the auth head)
    max_steps_per_epoch: int = 0  # 0 = the whole train split (smaller for smoke runs)
    limit_val_batches: int = 0  # 0 = the whole val split
    mc_passes: int = 10  # MC-dropout passes for the validation spread; 0 = skip
    mc_batches: int = 2  # val batches used for the MC-dropout spread
    target_far: float = 0.01  # false-acceptance rate for the calibrated threshold
    calibrate: bool = True  # calibrate the best checkpoint on val after training
    device: str = "auto"  # auto | cpu | cuda
    torch_threads: int = 0  # torch.set_num_threads per process; 0 = torch's default
    compile: bool = False  # torch.compile the CNN (needs a C++ compiler; ~1-2 min once per shape)
    log_every_steps: int = 20  # TensorBoard batch-level scalars every N optimizer steps
    auth_loss_weight: float = 1.0  # mode both: weight of the authentication loss
    id_loss_weight: float = 1.0  # mode both: weight of the identification loss

    def __post_init__(self) -> None:
        _check_types(self)
        if self.mode not in MODES:
            raise ConfigError(f"TrainConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"TrainConfig.device must be one of {DEVICES}, got {self.device!r}")
        positive = {"lr": self.lr, "batch_size": self.batch_size, "epochs": self.epochs}
        positive |= {"cosine_t_max": self.cosine_t_max, "aam_scale": self.aam_scale}
        positive |= {"log_every_steps": self.log_every_steps}
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"TrainConfig.{name} must be > 0, got {value!r}")
        non_negative = {
            "weight_decay": self.weight_decay,
            "patience": self.patience,
            "num_workers": self.num_workers,
            "grad_clip": self.grad_clip,
            "aam_margin": self.aam_margin,
            "max_steps_per_epoch": self.max_steps_per_epoch,
            "limit_val_batches": self.limit_val_batches,
            "mc_passes": self.mc_passes,
            "mc_batches": self.mc_batches,
            "torch_threads": self.torch_threads,
            "auth_loss_weight": self.auth_loss_weight,
            "id_loss_weight": self.id_loss_weight,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise ConfigError(f"TrainConfig.{name} must be >= 0, got {value!r}")
        if not 0.0 < self.target_far < 1.0:
            raise ConfigError(f"TrainConfig.target_far must be in (0, 1), got {self.target_far!r}")
        clash = sorted(_MODEL_KEYS_SET_BY_TRAINING & set(self.model))
        if clash:
            raise ConfigError(
                f"TrainConfig.model may not set {clash}: n_mels comes from the data, heads "
                "from --mode, the AAM settings from aam_margin / aam_scale"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Strict: unknown keys and wrong types raise ConfigError."""
        return dataclass_from_dict(cls, data)

    def resolved(self, *, cuda: bool) -> TrainConfig:
        """A copy with the automatic settings (pin_memory, persistent_workers) made explicit."""
        pin = cuda if self.pin_memory is None else self.pin_memory
        persistent = (
            self.num_workers > 0 if self.persistent_workers is None else self.persistent_workers
        )
        return dataclasses.replace(
            self, pin_memory=pin, persistent_workers=persistent and self.num_workers > 0
        )


# Expected types of the fields whose default does not tell dataclass_from_dict the type.
_OPTIONAL_BOOLS = ("pin_memory", "persistent_workers")


def _check_types(cfg: TrainConfig) -> None:
    if isinstance(cfg.num_workers, bool) or not isinstance(cfg.num_workers, int):
        raise ConfigError(f"TrainConfig.num_workers: expected int, got {cfg.num_workers!r}")
    for name in _OPTIONAL_BOOLS:
        value = getattr(cfg, name)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"TrainConfig.{name}: expected bool or null, got {value!r}")
    if not isinstance(cfg.model, dict):
        raise ConfigError(f"TrainConfig.model: expected a mapping, got {cfg.model!r}")


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], value); value parsed as JSON, else kept as a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.sub=value`` override set (nested dicts created)."""
    out = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
            node = child
        node[path[-1]] = value
    return out


def read_json_config(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``; ConfigError when unreadable, not JSON or not an object."""
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return loaded


def load_train_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    base: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults, then ``base`` (a dict), then the JSON file at ``path``, then ``key=value`` overrides.

    Raises ConfigError on unreadable files, unknown keys and wrong types.
    """
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        data.update(read_json_config(path))
    data = apply_overrides(data, list(overrides))
    return TrainConfig.from_dict(data)


def save_train_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write ``cfg`` as indented JSON (atomically: temp file + rename)."""
    from voxgate.core.fileio import atomic_write

    atomic_write(path, json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
