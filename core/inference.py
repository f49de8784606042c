"""The inference facade: waveforms in, embeddings / head probabilities / cosine scores out.

Everything the client and the evaluation need from a trained model goes through
:class:`SpeakerEncoder`; it reads its feature settings from the checkpoint, so live
features always match the ones the model was trained on.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import checkpoint_fingerprint, load_checkpoint, make_meta
from .config import FeatureConfig
from .device import resolve_device
from .errors import CheckpointError, ConfigError, EmptyAudioError, InvalidSamplesError, ProfileError
from .features import log_mel
from .model import ModelConfig, SpeakerNet
from .runtime import StageClock

__all__ = ["SpeakerEncoder", "ScoreResult", "default_model_path", "DEFAULT_THRESHOLD"]

# Cosine threshold used when a checkpoint carries no calibrated one (an untrained model,
# or a checkpoint saved before calibration). Calibrated thresholds replace it.
DEFAULT_THRESHOLD = 0.5


def default_model_path() -> Path:
    """$VOXGATE_MODEL if set, else <repo>/models/voxgate-base.pt (which may not exist)."""
    env = os.environ.get("VOXGATE_MODEL")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1] / "models" / "voxgate-base.pt"


@dataclass(frozen=True)
class ScoreResult:
    """Head probabilities of B windows.

    mean: float32 (B, C) in [0, 1], rows sum to 1 (mean over MC passes when mc_passes > 0);
    std: float32 (B, C) spread over passes (zeros without MC); labels: the C class names;
    pred: int64 (B,) argmax of mean.
    """

    mean: np.ndarray
    std: np.ndarray
    labels: list[str]
    pred: np.ndarray


# The layers dynamic int8 quantization converts (weights int8, activations quantized per
# call): the BiGRU and the large linear layers after it. The CNN and the SE blocks' tiny
# linears stay float32.
QUANTIZED_LAYERS = ("gru", "pool.proj", "fc1", "fc2")


def quantize_for_cpu(model: SpeakerNet) -> torch.nn.Module:
    """A copy of ``model`` (eval, CPU) with :data:`QUANTIZED_LAYERS` dynamically int8-quantized.

    Same inputs and outputs as the float model; ~2x faster GRU at batch 1 and 3x at the MC
    batch. The embedding moves by ~1e-3 cosine (docs/benchmarks.md: EER within 0.1 point).
    """
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    spec = {name: default_dynamic_qconfig for name in QUANTIZED_LAYERS}
    # torch.ao's deprecation notices are not the user's concern; it also draws from the
    # global RNG, which loading a model must leave alone.
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=False)


class FrozenCNN:
    """``model.cnn`` (no padding) as frozen TorchScript, traced once per input shape.

    Freezing folds the eval model's constants and drops Python overhead (~20 % of the CNN at
    batch 1). Each trace is checked against the eager CNN on its first input and replaced by
    the eager CNN if they differ; past ``max_shapes`` shapes the eager CNN runs.
    """

    def __init__(self, model: SpeakerNet, max_shapes: int = 4):
        self.model = model
        self.max_shapes = max_shapes
        self.traced: dict[tuple[int, ...], Any] = {}

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (B, T, M) -> (B, T, C * M / 8), as ``model.cnn(feats)``."""
        fn = self.traced.get(tuple(feats.shape))
        if fn is None:
            if len(self.traced) >= self.max_shapes:
                return self.model.cnn(feats)
            fn = self.traced[tuple(feats.shape)] = self._trace(feats)
        return fn(feats)

    def _trace(self, feats: torch.Tensor) -> Any:
        class _Cnn(torch.nn.Module):
            def __init__(self, model: SpeakerNet):
                super().__init__()
                self.model = model

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.model.cnn(x)

        x = feats.clone()  # a normal tensor: tracing cannot take inference-mode tensors
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape arithmetic
            frozen = torch.jit.freeze(torch.jit.trace(_Cnn(self.model).eval(), (x,)))
            same = torch.allclose(frozen(x), self.model.cnn(x), rtol=1e-4, atol=1e-4)
        return frozen if same else self.model.cnn


class SpeakerEncoder:
    """A loaded speaker model plus its metadata.

    Inputs are 16 kHz (``feature_config.sample_rate``) float waveforms in [-1, 1];
    embeddings are float32 unit vectors of ``model_config.embed_dim`` (256 by default).
    Deterministic calls run under ``torch.inference_mode()`` with the model in eval mode and
    its parameters frozen; MC passes switch on only the model's explicit dropouts.

    quantize: run the GRU and large linear layers in dynamic int8 (:func:`quantize_for_cpu`);
    None (default) does on CPU, never on CUDA. ``model`` stays the float model (saving,
    fingerprint); ``net`` computes after the CNN, ``cnn`` (:class:`FrozenCNN`) before it.
    ``clock`` accumulates the CPU seconds
    of the "features" and "model" stages (for the pipeline benchmark).
    """

    def __init__(
        self,
        model: SpeakerNet,
        meta: dict[str, Any],
        device: str | torch.device | None = None,
        *,
        quantize: bool | None = None,
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        if quantize and self.device.type != "cpu":
            raise ConfigError(f"int8 quantization runs on the CPU only, not on {self.device}")
        self.quantized = self.device.type == "cpu" if quantize is None else bool(quantize)
        self.net: torch.nn.Module = quantize_for_cpu(self.model) if self.quantized else self.model
        self.cnn = FrozenCNN(self.model)
        self.clock = StageClock()
        self.meta = meta
        try:
            self.feature_config = FeatureConfig.from_dict(meta["feature_config"])
        except (KeyError, ConfigError) as exc:
            raise CheckpointError(
                f"checkpoint metadata has no valid feature_config: {exc}"
            ) from exc
        self.model_config: ModelConfig = model.config
        if self.feature_config.n_mels != self.model_config.n_mels:
            raise CheckpointError(
                f"feature n_mels {self.feature_config.n_mels} != model n_mels "
                f"{self.model_config.n_mels}"
            )
        self.labels: dict[str, list[str]] = {k: list(v) for k, v in meta.get("labels", {}).items()}
        self.authorized: list[str] = list(meta.get("authorized", []))
        thr = meta.get("threshold")
        self.calibrated: bool = thr is not None
        self.threshold: float = float(thr) if thr is not None else DEFAULT_THRESHOLD
        self.calibration: dict[str, Any] = dict(meta.get("calibration", {}))
        self.mode: str = str(meta.get("mode", ""))
        self.fingerprint: str = checkpoint_fingerprint(self.model, meta)
        # name -> number of classes
        self.heads: dict[str, int] = {name: int(n) for name, n in self.model_config.heads}

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | None = None,
        device: str | torch.device | None = None,
        *,
        quantize: bool | None = None,
    ) -> SpeakerEncoder:
        """Load ``path`` (default :func:`default_model_path`); CheckpointError if missing/bad."""
        path = default_model_path() if path is None else Path(path)
        model, meta = load_checkpoint(path, map_location="cpu")
        meta = dict(meta, path=str(path))
        return cls(model, meta, device=device, quantize=quantize)

    @classmethod
    def untrained(
        cls,
        feature_config: FeatureConfig | None = None,
        model_config: ModelConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device | None = None,
        quantize: bool | None = None,
    ) -> SpeakerEncoder:
        """Random weights (seeded; global RNG untouched): for tests and before any training."""
        feature_config = feature_config or FeatureConfig()
        model_config = model_config or ModelConfig(n_mels=feature_config.n_mels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = SpeakerNet(model_config)
        meta = make_meta(model_config, feature_config, mode="untrained")
        return cls(model, meta, device=device, quantize=quantize)

    # -- features and embeddings ------------------------------------------------------------

    def features(self, waves: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Waveforms (N,) or (B, N) float -> log-mel dB float32 (B, T, M) on ``self.device``.

        T = 1 + N // hop_length. Raises InvalidSamplesError on NaN/inf, EmptyAudioError if N = 0.
        """
        x = torch.as_tensor(waves)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2:
            raise ValueError(f"waves must have shape (N,) or (B, N), got {tuple(x.shape)}")
        if x.shape[1] == 0:
            raise EmptyAudioError(None, "empty waveform (0 samples)")
        x = x.to(self.device, torch.float32)
        if not bool(torch.isfinite(x).all()):
            raise InvalidSamplesError(None, "waveform holds NaN or infinite samples")
        with self.clock.stage("features"), torch.inference_mode():
            return log_mel(x, self.feature_config)

    def _embed_feats(self, feats: torch.Tensor, passes: int, batch_size: int) -> torch.Tensor:
        """(B, T, M) -> (B, D) when passes == 0, else (passes, B, D); float32 on device."""
        feats = feats.to(self.device, torch.float32)
        if self.quantized:
            # Dynamic int8 scales activations per call: one window per call keeps a window's
            # embedding independent of its batch, so calibration (batched) and the live
            # path (window by window) give the same scores.
            batch_size = 1
        outs = []
        with self.clock.stage("model"), torch.inference_mode():
            for i in range(0, feats.shape[0], batch_size):
                chunk = feats[i : i + batch_size]
                h = self.cnn(chunk)  # the CNN once, also for MC passes
                if passes > 0:
                    outs.append(self.net.embed_mc_from_cnn(h, passes))
                else:
                    outs.append(self.net.embed_from_cnn(h))
        if not outs:
            d = self.model_config.embed_dim
            return feats.new_zeros((0, d) if passes == 0 else (passes, 0, d))
        return torch.cat(outs, dim=0 if passes == 0 else 1)

    def warm_up(self, batch: int = 1, mc_passes: int = 0) -> None:
        """Score ``batch`` silent windows twice (with ``mc_passes`` too when > 0), so that
        tracing the frozen CNN (~0.3-1 s) and TorchScript's first optimising runs happen
        now rather than on the first live window. Clock counts are left as they were."""
        x = np.zeros((batch, self.feature_config.chunk_samples), dtype=np.float32)
        enabled, self.clock.enabled = self.clock.enabled, False
        try:
            for _ in range(2):
                self.embed(x)
                if mc_passes > 0:
                    self.embed_mc(x, mc_passes)
        finally:
            self.clock.enabled = enabled

    def embed(self, waves: np.ndarray | torch.Tensor, *, batch_size: int = 64) -> np.ndarray:
        """Waveforms (B, N) (or (N,), treated as B = 1) -> float32 (B, D), each row unit norm."""
        return self.embed_features(self.features(waves), batch_size=batch_size)

    def embed_features(
        self, feats: torch.Tensor | np.ndarray, *, batch_size: int = 64
    ) -> np.ndarray:
        """Log-mel (B, T, M) dB (from :meth:`features`) -> float32 (B, D), unit norm."""
        feats = torch.as_tensor(feats)
        if feats.dim() == 2:
            feats = feats.unsqueeze(0)
        return self._embed_feats(feats, 0, batch_size).cpu().numpy()

    def embed_mc(
        self, waves: np.ndarray | torch.Tensor, passes: int, *, batch_size: int = 64
    ) -> np.ndarray:
        """MC-dropout embeddings float32 (passes, B, D), each vector unit norm."""
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        return self._embed_feats(self.features(waves), passes, batch_size).cpu().numpy()

    # -- scores ------------------------------------------------------------------------------

    def score(self, waves: np.ndarray | torch.Tensor, head: str, mc_passes: int = 0) -> ScoreResult:
        """Closed-set head probabilities of each window (see :class:`ScoreResult`)."""
        if head not in self.heads:
            raise ConfigError(f"unknown head {head!r}; this model has {list(self.heads)}")
        feats = self.features(waves)
        emb = self._embed_feats(feats, mc_passes, 64)
        with torch.inference_mode():
            if mc_passes > 0:
                p, b, d = emb.shape
                probs = self.net.head_probs(emb.reshape(p * b, d), head).view(p, b, -1)
                mean, std = probs.mean(dim=0), probs.std(dim=0, unbiased=False)
            else:
                mean = self.net.head_probs(emb, head)
                std = torch.zeros_like(mean)
        mean_np = mean.float().cpu().numpy()
        n = self.heads[head]
        labels = self.labels.get(head) or [str(i) for i in range(n)]
        return ScoreResult(
            mean=mean_np,
            std=std.float().cpu().numpy(),
            labels=list(labels),
            pred=mean_np.argmax(axis=1).astype(np.int64),
        )

    def verify(
        self, waves: np.ndarray | torch.Tensor, bank: np.ndarray, mc_passes: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of each window with each profile vector.

        bank: (K, D) or (D,) profile embeddings (normalised here). Returns (mean, std), both
        float32 (B, K) in [-1, 1]; std is the spread over MC passes (zeros when mc_passes = 0).
        """
        bank = np.asarray(bank, dtype=np.float32)
        if bank.ndim == 1:
            bank = bank[None, :]
        d = self.model_config.embed_dim
        if bank.ndim != 2 or bank.shape[1] != d:
            raise ProfileError(f"profile vectors must have shape (K, {d}), got {bank.shape}")
        norms = np.linalg.norm(bank, axis=1, keepdims=True)
        if not np.all(np.isfinite(bank)) or np.any(norms == 0):
            raise ProfileError("profile vectors must be finite and non-zero")
        bank_t = torch.from_numpy(bank / norms).to(self.device)
        emb = self._embed_feats(self.features(waves), mc_passes, 64)
        with torch.inference_mode():
            sims = emb @ bank_t.T  # (B, K) or (passes, B, K)
            if mc_passes > 0:
                mean, std = sims.mean(dim=0), sims.std(dim=0, unbiased=False)
            else:
                mean, std = sims, torch.zeros_like(sims)
        return mean.cpu().numpy(), std.cpu().numpy()

    def __repr__(self) -> str:
        return (
            f"SpeakerEncoder(fingerprint={self.fingerprint}, mode={self.mode!r}, "
            f"heads={self.heads}, device={self.device}, quantized={self.quantized})"
        )
