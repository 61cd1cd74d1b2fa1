"""Ridge regression on temporally pooled clip features: the floor every deep model must clear.

A video's real clips are pooled (``mean``, optionally ``max`` and ``std``), standardised with the
training videos' statistics, and ``score = intercept + coef . pooled`` is fitted in closed form, the
penalty chosen by k-fold cross-validation on the training videos (docs/models/ridge.md). With mean
pooling alone the part ``clip_scores`` (T,) says which clips raised or lowered the score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import Tensor

from aqakit.data.batches import ClipBank, EvalBatches
from aqakit.data.scale import ScoreScale
from aqakit.data.splits import carve_fold
from aqakit.data.videoset import VideoSet
from aqakit.errors import ConfigError, DataError
from aqakit.models.base import AQAModel, Explanation, Prediction
from aqakit.models.blocks import masked_mean
from aqakit.models.config import Distinct, HParams, Positive, Range
from aqakit.models.registry import register_model

Pooling = Literal["mean", "max", "std"]
CVMetric = Literal["mse", "spearman"]
#: Default penalty grid (features are standardised, so it does not depend on their scale).
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 6, 17))


@dataclass(frozen=True)
class RidgeConfig(HParams):
    """Ridge's settings.

    Attributes:
        pooling: temporal statistics concatenated per video, from ``mean``, ``max``, ``std``.
        alphas: candidate penalties, chosen by ``cv_folds``-fold cross-validation.
        cv_folds: folds of the penalty's cross-validation (fewer when there are fewer than
            2 videos per fold; with under 4 training videos the median penalty is taken).
        cv_metric: ``mse`` (normalised score) or ``spearman``: what the folds compare.
    """

    pooling: Annotated[tuple[Pooling, ...], Distinct()] = ("mean",)
    alphas: tuple[Positive, ...] = DEFAULT_ALPHAS
    cv_folds: Annotated[int, Range(low=2)] = 5
    cv_metric: CVMetric = "mse"


@register_model
class RidgeRegression(AQAModel):
    """Closed-form ridge regression on pooled clip features of dimension ``in_dim``; learning happens
    on the [0, 1] space of ``score_scale`` (the training scores' scale)."""

    name = "ridge"
    config_class = RidgeConfig
    config: RidgeConfig
    closed_form: ClassVar[bool] = True
    explanations = (
        Explanation(
            "clip_scores", "clips", "Each clip's score",
            "The linear model applied to each clip alone; the predicted score is the mean of these values over "
            "the clips (present with mean pooling only).",
            value="score (original scale)",
        ),
    )  # fmt: skip

    def __init__(self, in_dim: int, score_scale: ScoreScale, config: RidgeConfig | None = None) -> None:
        super().__init__(in_dim, score_scale, config)
        config = self.config
        self.pooling, self.alphas = list(config.pooling), list(config.alphas)
        self.cv_folds, self.cv_metric = config.cv_folds, config.cv_metric
        pooled_dim = len(self.pooling) * self.in_dim
        self.register_buffer("feature_mean", torch.zeros(pooled_dim))  # (F,)
        self.register_buffer("feature_scale", torch.ones(pooled_dim))  # (F,)
        self.register_buffer("coef", torch.zeros(pooled_dim))  # (F,)
        self.register_buffer("intercept", torch.zeros(()))
        self.register_buffer("alpha", torch.full((), float("nan")))  # the chosen penalty; NaN until fitted

    @property
    def fitted(self) -> bool:
        return not bool(torch.isnan(self.alpha))

    def pool(self, features: Tensor, mask: Tensor) -> Tensor:
        """features (B, T, D), mask (B, T) -> pooled (B, len(pooling) * D) over the real clips."""
        mean = masked_mean(features, mask)  # (B, D)
        stats = []
        for name in self.pooling:
            if name == "mean":
                stats.append(mean)
            elif name == "max":
                stats.append(features.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1))
            else:  # std: population standard deviation over the real clips (0 for one clip)
                stats.append(masked_mean((features - mean.unsqueeze(1)) ** 2, mask).clamp(min=0).sqrt())
        return torch.cat(stats, dim=1)

    def predict_normalised(self, features: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if not self.fitted:
            raise ConfigError("the ridge model is not fitted yet: train it with `aqakit train ridge ...` (fit_closed_form)")
        weights = self.coef / self.feature_scale  # (F,) on the raw pooled features
        offset = self.intercept - (self.feature_mean * weights).sum()
        score = offset + (self.pool(features, mask) @ weights[:, None]).squeeze(1)  # (B,); a matrix product, as FLOP counters see one
        parts: dict[str, Tensor] = {}
        if self.pooling == ["mean"]:
            clip_scores = offset + (features @ weights[:, None]).squeeze(-1)  # (B, T): their masked mean is the score
            parts["clip_scores"] = self.score_scale.denormalise(clip_scores.masked_fill(~mask, float("nan")))
        return score, parts

    def loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The squared error the fit minimises (without the penalty); reported, never optimised by steps."""
        return {"mse": ((prediction.normalised_score - self.normalised_target(batch)) ** 2).mean()}

    @torch.no_grad()
    def fit_closed_form(self, videos: VideoSet) -> dict[str, Any]:
        """Fit on ``videos`` (the training part only); returns the penalty search as a record."""
        if videos.feature_dim != self.in_dim:
            raise DataError(f"{videos.source}: feature dimension {videos.feature_dim}, the model expects {self.in_dim}")
        x = np.empty((len(videos), len(self.pooling) * self.in_dim))  # (N, F) pooled, in the set's order
        for batch in EvalBatches(ClipBank(videos)):
            x[batch["index"].numpy()] = self.pool(batch["features"], batch["mask"]).double().numpy()
        y = self.score_scale.normalise(torch.from_numpy(videos.scores)).double().numpy()  # (N,)
        if not np.isfinite(x).all():
            raise DataError(f"{videos.source}: pooled features are not finite (NaN or infinite values in a feature file)")
        folds = min(self.cv_folds, len(y) // 2)
        if folds >= 2:
            cv_curve = self._cross_validate(x, y, folds)
            key = (lambda i: (cv_curve[i], -self.alphas[i])) if self.cv_metric == "mse" else (lambda i: (-cv_curve[i], -self.alphas[i]))
            chosen = min(range(len(self.alphas)), key=key)
        else:
            cv_curve, chosen = [], len(self.alphas) // 2
        mean, scale = _standardiser(x)
        coef, intercept = _solve((x - mean) / scale, y, [self.alphas[chosen]])
        self.feature_mean.copy_(torch.from_numpy(mean))
        self.feature_scale.copy_(torch.from_numpy(scale))
        self.coef.copy_(torch.from_numpy(coef[0]))
        self.intercept.fill_(float(intercept))
        self.alpha.fill_(self.alphas[chosen])
        fitted = (x - mean) / scale @ coef[0] + intercept
        return {
            "alpha": self.alphas[chosen],
            "train_mse": float(((fitted - y) ** 2).mean()),  # normalised score, as the loss of other models
            "cv_folds": folds if folds >= 2 else 0,
            "cv_metric": self.cv_metric,
            "cv": [{"alpha": a, self.cv_metric: float(v)} for a, v in zip(self.alphas, cv_curve)],
        }

    def _cross_validate(self, x: np.ndarray, y: np.ndarray, folds: int) -> list[float]:
        """Per penalty, the mean over folds of the validation MSE (or Spearman)."""
        per_fold = []
        for fold in range(folds):
            train_idx, val_idx = carve_fold(y, folds, fold)
            mean, scale = _standardiser(x[train_idx])
            coef, intercept = _solve((x[train_idx] - mean) / scale, y[train_idx], self.alphas)
            predicted = ((x[val_idx] - mean) / scale) @ coef.T + intercept  # (n_val, A)
            if self.cv_metric == "mse":
                per_fold.append(((predicted - y[val_idx, None]) ** 2).mean(axis=0))
            else:
                per_fold.append([_spearman(predicted[:, a], y[val_idx]) for a in range(len(self.alphas))])
        return np.mean(per_fold, axis=0).tolist()


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations of ``x`` (N, F); constant columns get scale 1."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(scale > 1e-12, scale, 1.0)


def _solve(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> tuple[np.ndarray, float]:
    """Ridge coefficients (A, F) of centred ``x`` (N, F) for each penalty, and the intercept (mean y).

    One SVD serves every penalty: coef = V diag(s / (s^2 + alpha)) U^T (y - mean y).
    """
    intercept = float(y.mean())
    u, s, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    projected = u.T @ (y - intercept)  # (K,)
    shrink = s[None, :] / (s[None, :] ** 2 + np.asarray(alphas)[:, None])  # (A, K)
    return (shrink * projected[None, :]) @ vt, intercept


def _spearman(predicted: np.ndarray, true: np.ndarray) -> float:
    if np.ptp(predicted) == 0:
        return -1.0  # constant predictions rank nothing: the worst value
    return float(spearmanr(predicted, true).statistic)

