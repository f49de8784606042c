"""The additive angular margin (ArcFace) softmax head that trains the speaker embedding
(Deng et al. 2019): the model's classification heads, kept apart from the encoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AAMSoftmax"]


class AAMSoftmax(nn.Module):
    """Additive angular margin softmax head (ArcFace): logits = s * cos(theta [+ m on the target]).

    weight: (n_classes, embed_dim), Xavier-uniform. Cosines are computed in float32.
    Without ``easy_margin``, when theta + m would pass pi the target logit becomes
    cos(theta) - m * sin(m) (keeps the logit monotonic in theta); with it, the margin
    applies only where cos(theta) > 0.
    """

    def __init__(
        self,
        embed_dim: int,
        n_classes: int,
        margin: float = 0.25,
        scale: float = 30.0,
        *,
        easy_margin: bool = False,
    ):
        super().__init__()
        self.n_classes = n_classes
        self.margin = float(margin)
        self.scale = float(scale)
        self.easy_margin = easy_margin
        self.weight = nn.Parameter(torch.empty(n_classes, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self._cos_m = math.cos(margin)
        self._sin_m = math.sin(margin)
        self._th = math.cos(math.pi - margin)
        self._mm = math.sin(math.pi - margin) * margin

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        """emb: (B, D) -> float32 cosines (B, C) in [-1, 1]."""
        with torch.autocast(device_type=emb.device.type, enabled=False):
            return F.linear(
                F.normalize(emb.float(), dim=1), F.normalize(self.weight.float(), dim=1)
            )

    def forward(self, emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """emb (B, D), labels (B,) long or None -> float32 logits (B, C)."""
        cos = self.cosine(emb)
        if labels is None or self.margin == 0.0:
            return self.scale * cos
        cos_c = cos.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
        sin = (1.0 - cos_c.square()).sqrt()
        phi = cos_c * self._cos_m - sin * self._sin_m  # cos(theta + m)
        if self.easy_margin:
            phi = torch.where(cos_c > 0, phi, cos_c)
        else:
            phi = torch.where(cos_c > self._th, phi, cos_c - self._mm)
        target = F.one_hot(labels.long(), self.n_classes).bool()
        return self.scale * torch.where(target, phi, cos)
