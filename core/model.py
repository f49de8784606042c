"""The speaker model: CNN (with SE) -> BiGRU -> attentive statistics pooling -> L2 embedding.

The course report's architecture; every number is a :class:`ModelConfig` field. MC dropout is
two explicit dropouts (``core.dropout``: after the CNN, after pooling) switched on by ``mc=True``;
BatchNorm stays in eval mode, so an MC pass never changes running statistics.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .aam import AAMSoftmax
from .config import dataclass_from_dict
from .dropout import dropout
from .errors import ConfigError

__all__ = [
    "ModelConfig",
    "SpeakerNet",
    "SEBlock",
    "ConvBlock",
    "freq_pool",
    "length_mask",
]

# Variance floor before sqrt in statistics pooling (features are O(1) after the GRU's tanh).
_VAR_FLOOR = 1e-5


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; defaults are the report's.

    ``heads``: ((name, n_classes), ...), e.g. (("authentication", 2), ("identification", 40)).
    """

    n_mels: int = 64
    channels: tuple[int, ...] = (32, 64, 128)
    se_reduction: int = 8
    gru_hidden: int = 256
    gru_layers: int = 2
    gru_dropout: float = 0.2
    attention_dim: int = 128
    mc_dropout: float = 0.3
    embed_dim: int = 256
    heads: tuple[tuple[str, int], ...] = ()
    aam_margin: float = 0.25
    aam_scale: float = 30.0

    def __post_init__(self) -> None:
        if not self.channels or any(
            not isinstance(c, int) or isinstance(c, bool) or c <= 0 for c in self.channels
        ):
            raise ConfigError(f"ModelConfig.channels must be positive ints, got {self.channels!r}")
        pool = 2 ** len(self.channels)
        if self.n_mels <= 0 or self.n_mels % pool:
            raise ConfigError(
                f"ModelConfig.n_mels ({self.n_mels}) must be a positive multiple of {pool} "
                f"({len(self.channels)} frequency pools)"
            )
        for name in ("se_reduction", "gru_hidden", "gru_layers", "attention_dim", "embed_dim"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"ModelConfig.{name} must be > 0")
        for name in ("gru_dropout", "mc_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"ModelConfig.{name} must be in [0, 1)")
        if not 0.0 <= self.aam_margin < math.pi / 2:
            raise ConfigError("ModelConfig.aam_margin must be in [0, pi/2) radians")
        if self.aam_scale <= 0:
            raise ConfigError("ModelConfig.aam_scale must be > 0")
        names = [h[0] for h in self.heads]
        if len(set(names)) != len(names):
            raise ConfigError(f"ModelConfig.heads: duplicate head names {names}")
        for head in self.heads:
            ok = (
                len(head) == 2
                and isinstance(head[0], str)
                and isinstance(head[1], int)
                and not isinstance(head[1], bool)
                and head[1] >= 2
            )
            if not ok:
                raise ConfigError(
                    f"ModelConfig.heads: expected (name, n_classes >= 2), got {head!r}"
                )

    @property
    def cnn_out_dim(self) -> int:
        """Features per frame after the CNN: channels[-1] * n_mels / 2**len(channels)."""
        return self.channels[-1] * self.n_mels // 2 ** len(self.channels)

    @property
    def pooled_dim(self) -> int:
        """Weighted mean || weighted std of the BiGRU output: 4 * gru_hidden."""
        return 4 * self.gru_hidden

    def head_classes(self, name: str) -> int:
        for head, n in self.heads:
            if head == name:
                return int(n)
        raise ConfigError(f"unknown head {name!r}; known: {[h for h, _ in self.heads]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-compatible dict (tuples as lists)."""
        d = dataclasses.asdict(self)
        d["channels"] = [int(c) for c in self.channels]
        d["heads"] = [[str(n), int(c)] for n, c in self.heads]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Strict inverse of :meth:`to_dict`: unknown keys and wrong types raise ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError(f"ModelConfig: expected a mapping, got {type(data).__name__}")
        data = dict(data)
        if "heads" in data:
            heads = data["heads"]
            if not isinstance(heads, (list, tuple)) or not all(
                isinstance(h, (list, tuple)) and len(h) == 2 for h in heads
            ):
                raise ConfigError(
                    f"ModelConfig.heads: expected [[name, n_classes], ...], got {heads!r}"
                )
            data["heads"] = tuple((h[0], h[1]) for h in heads)
        return dataclass_from_dict(cls, data)


def length_mask(
    lengths: torch.Tensor | None, t_max: int, device: torch.device
) -> torch.Tensor | None:
    """Bool (B, t_max), True on valid frames; None when ``lengths`` is None."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=device)
    return torch.arange(t_max, device=device)[None, :] < lengths[:, None]


class SEBlock(nn.Module):
    """Squeeze-and-Excitation over channels; the squeeze is a mean over valid (time, freq) cells."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, T, F); mask: bool (B, T) or None; x must already be zero on padded frames."""
        if mask is None:
            s = x.mean(dim=(2, 3))
        else:
            denom = mask.sum(dim=1).clamp_min(1).to(x.dtype) * x.shape[3]
            s = x.sum(dim=(2, 3)) / denom[:, None]
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * w[:, :, None, None].to(x.dtype)


class ConvBlock(nn.Module):
    """Conv2d 3x3 pad 1 -> BatchNorm2d -> ReLU -> SE -> MaxPool2d((1, 2)) (frequency only)."""

    def __init__(self, c_in: int, c_out: int, se_reduction: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.se = SEBlock(c_out, se_reduction)
        self.pool = nn.MaxPool2d((1, 2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        if mask is not None:
            # Zero padded frames so the next 3x3 conv sees what zero padding would give it.
            x = x * mask[:, None, :, None].to(x.dtype)
        x = self.se(x, mask)
        if x.requires_grad:
            return self.pool(x)  # training: MaxPool2d's gradient (to the first maximum on ties)
        return freq_pool(x)


def freq_pool(x: torch.Tensor) -> torch.Tensor:
    """Max over adjacent frequency pairs, (B, C, T, F) -> (B, C, T, F // 2).

    The same values as ``MaxPool2d((1, 2))`` (a max is exact), about 10x faster on CPU at
    batch 1, where torch's max_pool2d costs ~0.5 ms per call whatever the size.
    """
    f = x.shape[3] - x.shape[3] % 2
    return torch.maximum(x[..., 0:f:2], x[..., 1:f:2])


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al. 2018), one attention weight per frame.

    e_t = v^T tanh(W h_t + b) + k; w = masked softmax over valid frames;
    output = sum_t w_t h_t || sqrt(sum_t w_t h_t^2 - mean^2). Softmax and statistics in float32.
    """

    def __init__(self, dim: int, attention_dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """h: (B, T, D); mask: bool (B, T) or None -> float32 (B, 2D)."""
        logits = self.score(torch.tanh(self.proj(h))).squeeze(-1).float()  # (B, T)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        w = torch.softmax(logits, dim=1).unsqueeze(-1)  # (B, T, 1) float32
        hf = h.float()
        if mask is not None:
            hf = hf.masked_fill(~mask[..., None], 0.0)  # keep 0 * padding finite
        mean = (w * hf).sum(dim=1)
        var = (w * (hf - mean[:, None, :]).square()).sum(dim=1)
        return torch.cat([mean, var.clamp_min(_VAR_FLOOR).sqrt()], dim=1)


class SpeakerNet(nn.Module):
    """Log-mel (B, T, M) -> L2-normalised speaker embedding (B, embed_dim) float32.

    Padding: pass ``lengths`` (valid frames per item); padded frames then change nothing.
    """

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        cfg = cfg or ModelConfig()
        self.config = cfg
        blocks, c_in = [], 1
        for c in cfg.channels:
            blocks.append(ConvBlock(c_in, int(c), cfg.se_reduction))
            c_in = int(c)
        self.blocks = nn.ModuleList(blocks)
        self.gru = nn.GRU(
            cfg.cnn_out_dim,
            cfg.gru_hidden,
            num_layers=cfg.gru_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.gru_dropout if cfg.gru_layers > 1 else 0.0,
        )
        self.pool = AttentiveStatsPooling(2 * cfg.gru_hidden, cfg.attention_dim)
        self.fc1 = nn.Linear(cfg.pooled_dim, cfg.embed_dim)
        self.bn = nn.BatchNorm1d(cfg.embed_dim)
        self.fc2 = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.heads = nn.ModuleDict(
            {
                name: AAMSoftmax(cfg.embed_dim, int(n), cfg.aam_margin, cfg.aam_scale)
                for name, n in cfg.heads
            }
        )

    # -- parts ------------------------------------------------------------------------------

    def _check(self, feats: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor | None:
        """``lengths`` as clamped int64 (B,), or None when there is no padding (every row
        full-length, as in training batches): masks would only multiply by one."""
        if feats.dim() != 3 or feats.shape[2] != self.config.n_mels:
            raise ValueError(
                f"SpeakerNet expects feats (B, T, {self.config.n_mels}), got {tuple(feats.shape)}"
            )
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths, device=feats.device).long()
        if lengths.shape != (feats.shape[0],):
            raise ValueError(
                f"lengths must have shape ({feats.shape[0]},), got {tuple(lengths.shape)}"
            )
        lengths = lengths.clamp(1, feats.shape[1])
        return None if bool((lengths == feats.shape[1]).all()) else lengths

    def cnn(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """feats (B, T, M) dB -> h (B, T, C * M / 8); zero on padded frames when lengths given."""
        lengths = self._check(feats, lengths)
        mask = length_mask(lengths, feats.shape[1], feats.device)
        x = feats.unsqueeze(1)  # (B, 1, T, M)
        if mask is not None:
            x = x * mask[:, None, :, None].to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        b, c, t, f = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, t, c * f)

    def _gru_input(self, h: torch.Tensor) -> torch.Tensor:
        # Under autocast the GRU runs in the low-precision dtype (2x faster in bf16 on CPU);
        # otherwise its input must match its float32 weights.
        if torch.is_autocast_enabled(h.device.type):
            return h
        # A dynamically quantized GRU (torch.ao) has no weight_ih_l0 and takes float32.
        weight = getattr(self.gru, "weight_ih_l0", None)
        return h.to(weight.dtype if isinstance(weight, torch.Tensor) else torch.float32)

    def embed_from_cnn(
        self, h: torch.Tensor, lengths: torch.Tensor | None = None, mc: bool = False
    ) -> torch.Tensor:
        """h (B, T, C * M / 8) -> float32 L2-normalised embedding (B, D)."""
        active = self.training or mc
        p = self.config.mc_dropout
        h = dropout(h, p, active)
        t_max = h.shape[1]
        if lengths is not None:
            lengths = torch.as_tensor(lengths).long().clamp(1, t_max)
        if lengths is not None and bool((lengths < t_max).any()):
            packed = pack_padded_sequence(
                self._gru_input(h),
                lengths.cpu(),
                batch_first=True,
                enforce_sorted=False,
            )
            out, _ = self.gru(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=t_max)
            mask = length_mask(lengths, t_max, h.device)
        else:
            out, _ = self.gru(self._gru_input(h))
            mask = None
        pooled = self.pool(out, mask)  # (B, 4H) float32
        pooled = dropout(pooled, p, active)
        z = self.fc2(F.relu(self.bn(self.fc1(pooled))))
        return F.normalize(z.float(), dim=1)

    # -- public -----------------------------------------------------------------------------

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor | None = None, mc: bool = False
    ) -> torch.Tensor:
        """feats (B, T, M) float dB, lengths (B,) frames or None -> float32 (B, D), unit norm."""
        lengths = self._check(feats, lengths)
        return self.embed_from_cnn(self.cnn(feats, lengths), lengths, mc=mc)

    def embed_mc(
        self, feats: torch.Tensor, passes: int, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """MC-dropout embeddings (passes, B, D): the CNN runs once, the rest on passes*B rows."""
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        lengths = self._check(feats, lengths)
        return self.embed_mc_from_cnn(self.cnn(feats, lengths), passes, lengths)

    def embed_mc_from_cnn(
        self, h: torch.Tensor, passes: int, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """CNN output h (B, T, C * M / 8) -> MC-dropout embeddings (passes, B, D) float32:
        the GRU and what follows run once on passes * B rows, each with its own dropout."""
        b = h.shape[0]
        hr = h.repeat(passes, 1, 1)
        lr = None if lengths is None else lengths.repeat(passes)
        return self.embed_from_cnn(hr, lr, mc=True).view(passes, b, -1)

    def _head(self, head: str) -> AAMSoftmax:
        if head not in self.heads:
            raise ConfigError(f"unknown head {head!r}; this model has {list(self.heads)}")
        return self.heads[head]

    def head_logits(
        self, emb: torch.Tensor, head: str, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """AAM logits (B, C) float32: s * cos, with the margin on the target when labels given."""
        return self._head(head)(emb, labels)

    def head_probs(self, emb: torch.Tensor, head: str) -> torch.Tensor:
        """Class probabilities softmax(s * cos), float32 (B, C), rows sum to 1."""
        return torch.softmax(self._head(head)(emb, None), dim=1)
