"""The one device resolver."""

from __future__ import annotations

import pytest
import torch

from voxgate.core.device import resolve_device
from voxgate.core.errors import ConfigError


def test_auto_cpu_and_passthrough(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    dev = torch.device("cpu")
    assert resolve_device(dev) is dev
    with pytest.raises(ConfigError, match="no CUDA"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")


def test_auto_prefers_cuda_when_present(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
