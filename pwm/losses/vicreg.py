"""VICReg's variance and covariance terms, the ablation regulariser of DESIGN 5.3.

Bardes, Ponce, LeCun (2022). The invariance term is the JEPA prediction loss itself, so only the
anti-collapse terms live here: a hinge keeping each dimension's std above `gamma` and a penalty
on off-diagonal covariance. Input (T, B, D) or (B, D); statistics are per time step over the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def vicreg(
    z: Tensor, std_weight: float = 25.0, cov_weight: float = 1.0, gamma: float = 1.0
) -> Tensor:
    """std_weight * mean relu(gamma - std) + cov_weight * sum offdiag(cov)^2 / D, mean over T."""
    if z.dim() == 2:
        z = z.unsqueeze(0)  # (1, B, D)
    T, B, D = z.shape
    z = z - z.mean(1, keepdim=True)  # (T, B, D)
    std = torch.sqrt(z.var(1) + 1e-4)  # (T, D)
    std_loss = torch.relu(gamma - std).mean()
    cov = torch.einsum("tbi,tbj->tij", z, z) / (B - 1)  # (T, D, D)
    off = cov - torch.diag_embed(torch.diagonal(cov, dim1=1, dim2=2))
    cov_loss = off.square().sum((1, 2)).mean() / D
    return std_weight * std_loss + cov_weight * cov_loss


class VICReg(nn.Module):
    """`vicreg` as a regulariser module (regularizers.py): `reg(z, step)`, z (T, B, D) or (B, D);
    the step is not used."""

    def forward(self, z: Tensor, step: int | None = None) -> Tensor:
        return vicreg(z)
