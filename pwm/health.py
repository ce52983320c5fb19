"""Embedding health: the two numbers that make collapse visible in every run.

- mean per-dimension std: ~1 for SIGReg's isotropic Gaussian target, ~0 under complete collapse;
- effective rank (Roy & Vetterli 2007): exp of the entropy of the normalised singular values of
  the centred embedding matrix; D for an isotropic cloud, 1 under dimensional collapse.
"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def embedding_std(z: Tensor) -> Tensor:
    """Mean over dimensions of the std over samples; z (..., D)."""
    return z.reshape(-1, z.shape[-1]).float().std(0).mean()


@torch.no_grad()
def effective_rank(z: Tensor, eps: float = 1e-12) -> Tensor:
    """exp(entropy(sigma / sum sigma)) of the centred (N, D) matrix; z (..., D)."""
    x = z.reshape(-1, z.shape[-1]).float()  # (N, D)
    if not torch.isfinite(x).all():  # undefined (the SVD would fail); the loss check reports it
        return torch.full((), float("nan"), device=z.device)
    x = x - x.mean(0)
    s = torch.linalg.svdvals(x)  # (min(N, D),)
    if s.sum() <= eps:
        return torch.ones((), device=z.device)
    p = s / s.sum()
    return torch.exp(-(p * torch.log(p + eps)).sum())
