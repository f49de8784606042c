"""voxgate average: the weighted mean of checkpoints, uncalibrated, refused across architectures."""

from __future__ import annotations

import pytest
import torch

from conftest import save_test_checkpoint, tiny_model_config, write_tiny_checkpoint
from voxgate.cli import main
from voxgate.core.checkpoint import load_checkpoint, read_checkpoint, update_checkpoint
from voxgate.core.config import FeatureConfig
from voxgate.core.errors import ConfigError
from voxgate.core.model import SpeakerNet
from voxgate.exitcodes import EXIT_ERROR
from voxgate.training.average import average_checkpoints


def test_weighted_mean_of_every_shared_tensor(tmp_path) -> None:
    a = write_tiny_checkpoint(tmp_path / "a.pt", seed=1)
    b = write_tiny_checkpoint(tmp_path / "b.pt", seed=2)
    update_checkpoint(a, threshold=0.7, calibration={"target_far": 0.01})
    out = tmp_path / "avg.pt"
    summary = average_checkpoints([a, b], out, weights=[3, 1])
    assert [s["weight"] for s in summary["inputs"]] == [0.75, 0.25]
    sa, sb = (read_checkpoint(p)["model_state"] for p in (a, b))
    model, meta = load_checkpoint(out)  # loads strictly, weights_only
    for name, t in model.state_dict().items():
        if torch.is_floating_point(t):
            torch.testing.assert_close(t, 0.75 * sa[name] + 0.25 * sb[name])
        else:
            assert torch.equal(t, sa[name])  # counters: the first input's
    # the threshold and calibration were the first input's weights': cleared
    assert meta["threshold"] is None and meta["calibration"] == {}
    assert meta["labels"] == read_checkpoint(a)["labels"] and summary["first_only"] == []
    assert [s["path"] for s in meta["train_config"]["averaged_from"]] == [str(a), str(b)]


def test_a_head_over_other_speakers_is_the_first_inputs(tmp_path) -> None:
    a = write_tiny_checkpoint(tmp_path / "a.pt", seed=1)
    cfg = tiny_model_config(n_mels=64, gru_layers=1, embed_dim=16,
                            heads=(("authentication", 2), ("identification", 9)))  # fmt: skip
    torch.manual_seed(3)
    b = save_test_checkpoint(tmp_path / "b.pt", SpeakerNet(cfg), FeatureConfig(), mode="both")
    summary = average_checkpoints([a, b], tmp_path / "avg.pt")
    assert summary["first_only"] == ["heads.identification.weight"]
    model, _ = load_checkpoint(tmp_path / "avg.pt")
    first = read_checkpoint(a)["model_state"]["heads.identification.weight"]
    assert torch.equal(model.state_dict()["heads.identification.weight"], first)


def test_other_architectures_and_bad_weights_are_refused(tmp_path, capsys) -> None:
    a = write_tiny_checkpoint(tmp_path / "a.pt", seed=1)
    wide = tiny_model_config(n_mels=64, gru_layers=1, embed_dim=32)
    c = save_test_checkpoint(tmp_path / "c.pt", SpeakerNet(wide), FeatureConfig())
    with pytest.raises(ConfigError, match="model_config differs"):
        average_checkpoints([a, c], tmp_path / "x.pt")
    for weights in ([1.0], [1.0, 0.0], [1.0, float("nan")]):
        with pytest.raises(ConfigError, match="--weights"):
            average_checkpoints([a, a], tmp_path / "x.pt", weights=weights)
    assert main(["average", str(a), "--out", str(tmp_path / "x.pt")]) == EXIT_ERROR
    assert "at least two" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
