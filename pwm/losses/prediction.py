"""Prediction losses: how a prediction of z_{t+1} is scored against its target (DESIGN 5.2).

Each is a module called once per training step as `loss(pred, target, logvar)` with the
predictions (B, L-1, D), the target embeddings they predict (B, L-1, D) and the predictor's
log-variance (None without a variance head); it returns a scalar. `PREDICTION_LOSSES[name]()`
builds one, `model.prediction` names it, and `VARIANCE[name]` says whether the predictor needs a
variance head. The probes' surprise is the same per-position quantity (WorldModel.error).

- `mse` (LeWM): the mean squared error over positions, batch and dimensions.
- `gaussian`: the predictor outputs a diagonal Gaussian over z_{t+1} (a mean and a log-variance
  per feature) and the loss is its negative log-likelihood, 0.5 ((pred - z)^2 / var + log var),
  averaged the same way. Why: a stochastic feature (who defects next round) is predicted at its
  expected value under a squared error, which leaves little margin between a likely and an
  unlikely outcome once the other features' errors are added; a likelihood weights each feature
  by its predicted certainty, so an outcome the model was sure would not happen costs much more
  than one it had as a coin flip (the surprise is then a log-likelihood, as the ideal observer's
  is a log-probability).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def elementwise(mean: Tensor, target: Tensor, logvar: Tensor | None = None) -> Tensor:
    """(..., D) each -> (..., D): the squared error per feature, or the Gaussian negative
    log-likelihood 0.5 ((mean - target)^2 / var + log var) given a log-variance (the constant
    0.5 log 2 pi left out)."""
    sq = (mean - target) ** 2  # (..., D)
    if logvar is None:
        return sq
    return 0.5 * (sq * torch.exp(-logvar) + logvar)


def surprise(mean: Tensor, target: Tensor, logvar: Tensor | None = None) -> Tensor:
    """(..., D) each -> (...,): `elementwise` averaged over features. The per-position quantity
    each loss averages, and the probes' surprise (WorldModel.error)."""
    return elementwise(mean, target, logvar).mean(-1)


def weighted_loss(
    pred: Tensor, target: Tensor, logvar: Tensor | None, weight: Tensor, objects: int
) -> Tensor:
    """The prediction loss under per-step, per-agent weights (the data's event weights).

    pred, target (B, P, D) and logvar (or None) as the losses take them; weight (B, P, n): one
    weight per predicted step and agent. With `objects` == n object tokens (D = n blocks of D / n
    features, object i's block at i D / n) each object's loss gets its agent's weight; with any
    other token layout (one embedding per frame, patch tokens) each step gets the mean of its
    agents' weights. Returns sum(w * loss) / sum(w): equal weights give the unweighted loss.
    """
    per = elementwise(pred, target, logvar)  # (B, P, D)
    B, P, D = per.shape
    if tuple(weight.shape[:2]) != (B, P):
        raise ValueError(f"weights of shape {tuple(weight.shape)} for predictions {(B, P, D)}")
    n = weight.shape[-1]
    if objects == n:
        per = per.reshape(B, P, n, D // n).mean(-1)  # (B, P, n)
    else:
        per, weight = per.mean(-1), weight.mean(-1)  # (B, P)
    weight = weight.to(per.dtype)
    return (weight * per).sum() / weight.sum()


class MSE(nn.Module):
    """Mean squared error (LeWM)."""

    def forward(self, pred: Tensor, target: Tensor, logvar: Tensor | None = None) -> Tensor:
        return F.mse_loss(pred, target)


class GaussianNLL(nn.Module):
    """Negative log-likelihood of the target under the predicted diagonal Gaussian."""

    def forward(self, pred: Tensor, target: Tensor, logvar: Tensor | None = None) -> Tensor:
        if logvar is None:
            raise ValueError("the gaussian prediction loss needs a predictor with a variance head")
        return surprise(pred, target, logvar).mean()


# name -> the prediction loss; whether it needs the predictor's variance head
PREDICTION_LOSSES: dict[str, Callable[[], nn.Module]] = {"mse": MSE, "gaussian": GaussianNLL}
VARIANCE = {"mse": False, "gaussian": True}
