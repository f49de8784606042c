"""The one device resolver: every command and class that takes a device spec uses it."""

from __future__ import annotations

import torch

from .errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(spec: str | torch.device | None = None, local_rank: int = 0) -> torch.device:
    """None or "auto": CUDA (``cuda:local_rank``) when torch sees one, else the CPU; "cpu";
    "cuda" / "cuda:N" (ConfigError without CUDA); a torch.device passes through."""
    if isinstance(spec, torch.device):
        return spec
    name = "auto" if spec is None else str(spec).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} requested but torch sees no CUDA device")
        return torch.device(name) if ":" in name else torch.device("cuda", local_rank)
    raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
