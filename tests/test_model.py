"""Tests for core/model.py: shapes, masking, MC dropout, AAM head, config, a tiny training run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_model_config
from voxgate.core.aam import AAMSoftmax
from voxgate.core.errors import ConfigError
from voxgate.core.model import ModelConfig, SpeakerNet

TINY = tiny_model_config(heads=(("authentication", 2), ("identification", 5)))


def tiny_net(seed: int = 0) -> SpeakerNet:
    torch.manual_seed(seed)
    return SpeakerNet(TINY).eval()


def feats(b: int = 3, t: int = 20, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return -80.0 * torch.rand(b, t, TINY.n_mels, generator=g)  # dB in [-80, 0]


def test_config_defaults_are_the_reports() -> None:
    cfg = ModelConfig()
    assert cfg.channels == (32, 64, 128) and cfg.cnn_out_dim == 1024
    assert cfg.pooled_dim == 1024 and cfg.embed_dim == 256
    assert (cfg.mc_dropout, cfg.gru_dropout, cfg.aam_margin, cfg.aam_scale) == (
        0.3,
        0.2,
        0.25,
        30.0,
    )


def test_config_round_trip_and_strictness() -> None:
    d = TINY.to_dict()
    assert d["heads"] == [["authentication", 2], ["identification", 5]]
    assert ModelConfig.from_dict(d) == TINY
    with pytest.raises(ConfigError, match="unknown"):
        ModelConfig.from_dict({**d, "gru_hiden": 3})
    with pytest.raises(ConfigError):
        ModelConfig(n_mels=20)  # not a multiple of 8
    with pytest.raises(ConfigError):
        ModelConfig(heads=(("a", 2), ("a", 3)))
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({**d, "heads": [["a", 2.5]]})
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({**d, "channels": [4, "8", 8]})


def test_shapes_and_unit_norm() -> None:
    net = tiny_net()
    x = feats()
    h = net.cnn(x)
    assert h.shape == (3, 20, 8 * 16 // 8)
    with torch.inference_mode():
        emb = net(x)
    assert emb.shape == (3, TINY.embed_dim) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError):
        net(torch.zeros(2, 10, 8))


def test_padding_does_not_change_the_embedding() -> None:
    net = tiny_net()
    x = feats(3, 30)
    lengths = torch.tensor([30, 17, 5])
    padded = x.clone()
    padded[1, 17:] = 123.0  # garbage in the padding must not matter
    padded[2, 5:] = -7.0
    with torch.inference_mode():
        batch = net(padded, lengths)
        for k, n in enumerate(lengths.tolist()):
            alone = net(x[k : k + 1, :n])
            torch.testing.assert_close(batch[k : k + 1], alone, atol=1e-4, rtol=0)
        # Lengths == T for every item is the unpadded path.
        torch.testing.assert_close(net(x, torch.tensor([30, 30, 30])), net(x), atol=1e-6, rtol=0)


def test_mc_off_is_deterministic_and_mc_on_spreads() -> None:
    net = tiny_net()
    x = feats()
    with torch.inference_mode():
        a, b = net(x), net(x)
        assert torch.equal(a, b)
        m1, m2 = net(x, mc=True), net(x, mc=True)
    assert (m1 - m2).abs().max() > 1e-3
    stack = net.embed_mc(x, 8).detach()
    assert stack.std(dim=0).mean() > 1e-3


def test_mc_passes_leave_batchnorm_alone() -> None:
    net = tiny_net()
    net.train()
    with torch.no_grad():
        net(feats(4, 20, seed=1))  # move running stats away from their init
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.inference_mode():
        net(feats(), mc=True)
        net.embed_mc(feats(), 5)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not any(m.training for m in net.modules())


def test_embed_mc_matches_per_pass_semantics() -> None:
    net = tiny_net()
    x = feats(2, 20)
    lengths = torch.tensor([20, 11])
    torch.manual_seed(5)
    stack = net.embed_mc(x, 4, lengths).detach()
    assert stack.shape == (4, 2, TINY.embed_dim)
    torch.testing.assert_close(stack.norm(dim=2), torch.ones(4, 2))
    # Same dropout masks, drawn for the (passes * B) batch, reproduce each pass row by row.
    torch.manual_seed(5)
    h = net.cnn(x, lengths)
    ref = net.embed_from_cnn(h.repeat(4, 1, 1), lengths.repeat(4), mc=True).view(4, 2, -1)
    torch.testing.assert_close(stack, ref.detach())
    # With dropout off (p = 0), every pass equals the deterministic embedding.
    torch.manual_seed(0)
    net0 = SpeakerNet(ModelConfig.from_dict({**TINY.to_dict(), "mc_dropout": 0.0})).eval()
    with torch.inference_mode():
        s0 = net0.embed_mc(x, 3, lengths)
        det = net0(x, lengths)
    torch.testing.assert_close(s0, det.expand(3, -1, -1), atol=1e-5, rtol=0)


def test_aam_margin_lowers_only_the_target_logit() -> None:
    net = tiny_net()
    with torch.inference_mode():
        emb = net(feats(4, 20))
        labels = torch.tensor([0, 1, 2, 4])
        plain = net.head_logits(emb, "identification")
        margin = net.head_logits(emb, "identification", labels)
        probs = net.head_probs(emb, "identification")
    assert plain.shape == (4, 5)
    target = F.one_hot(labels, 5).bool()
    assert torch.all(margin[target] < plain[target])
    torch.testing.assert_close(margin[~target], plain[~target])
    # Where theta + m stays below pi the target logit is s * cos(theta + m).
    theta = torch.acos((plain[target] / TINY.aam_scale).clamp(-1, 1))
    expect = TINY.aam_scale * torch.cos(theta + TINY.aam_margin)
    ok = theta + TINY.aam_margin < math.pi
    torch.testing.assert_close(margin[target][ok], expect[ok], atol=1e-4, rtol=0)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(4))
    assert torch.all(plain.abs() <= TINY.aam_scale + 1e-4)
    with pytest.raises(ConfigError):
        net.head_probs(emb, "nope")


def test_aam_fallback_past_pi_is_finite_and_monotonic() -> None:
    head = AAMSoftmax(2, 2, margin=0.5, scale=1.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    angles = torch.linspace(0.0, math.pi, 50)
    emb = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    logit = head(emb, torch.zeros(50, dtype=torch.long))[:, 0]
    assert torch.isfinite(logit).all()
    assert torch.all(logit[1:] <= logit[:-1] + 1e-6)  # decreasing in theta, even past pi - m
    # cos is clamped just inside [-1, 1] (finite gradients), hence the tolerance at theta = 0.
    torch.testing.assert_close(logit[0], torch.tensor(math.cos(0.5)), atol=1e-3, rtol=0)
    easy = AAMSoftmax(2, 2, margin=0.5, scale=1.0, easy_margin=True)
    with torch.no_grad():
        easy.weight.copy_(head.weight)
    assert torch.isfinite(easy(emb, torch.zeros(50, dtype=torch.long))).all()


def test_autocast_bfloat16_forward_and_backward() -> None:
    net = tiny_net().train()
    x = feats(4, 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = net(x, torch.tensor([20, 20, 15, 9]))
        logits = net.head_logits(emb, "authentication", torch.tensor([0, 1, 0, 1]))
    assert emb.dtype == torch.float32 and logits.dtype == torch.float32
    F.cross_entropy(logits, torch.tensor([0, 1, 0, 1])).backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_aam_loss_decreases_on_two_separable_classes() -> None:
    torch.manual_seed(0)
    net = SpeakerNet(TINY).train()
    g = torch.Generator().manual_seed(3)
    n, t = 16, 12
    y = torch.arange(n) % 2
    # Class 0: energy in the low bands; class 1: in the high bands; plus noise.
    x = -60.0 + 5.0 * torch.randn(n, t, TINY.n_mels, generator=g)
    x[y == 0, :, :6] += 50.0
    x[y == 1, :, -6:] += 50.0
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(net.head_logits(net(x), "authentication", y), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    net.eval()
    with torch.inference_mode():
        pred = net.head_probs(net(x), "authentication").argmax(dim=1)
    assert torch.equal(pred, y)


def test_freq_pool_equals_maxpool_and_eval_blocks_use_it() -> None:
    from voxgate.core.model import ConvBlock, freq_pool

    x = torch.randn(3, 8, 5, 16)
    x[0, 0, 0, :2] = 1.5  # a tie
    for y in (x, x[..., :15]):  # an odd width drops the last bin, as MaxPool2d does
        torch.testing.assert_close(freq_pool(y), F.max_pool2d(y, (1, 2)), rtol=0, atol=0)
    block = ConvBlock(8, 4, 2).eval()
    with torch.inference_mode():
        fast = block(x)
        slow = block.pool(block.se(torch.relu(block.bn(block.conv(x)))))
    torch.testing.assert_close(fast, slow, rtol=0, atol=0)
    # Training keeps MaxPool2d (its gradient on ties); the values are the same.
    y = x.clone().requires_grad_(True)
    block.train()(y).sum().backward()
    assert y.grad is not None and y.grad.shape == x.shape
