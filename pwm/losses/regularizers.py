"""Anti-collapse regularisers, chosen by name (`model.regularizer`; DESIGN 5.1, 5.3).

Each is a module called once per training step as `reg(z, step)` with the embeddings z
(T, B, D) and the trainer's step (SIGReg seeds its random directions with it; validation passes
0, so its directions are fixed there); it returns a scalar, weighted by `model.lam` in the loss.
`REGULARIZERS[name](num_directions)` builds the one `model.regularizer` names; a new regulariser
is one more entry.

- `sigreg` (LeWM): SIGReg, the Epps-Pulley test of M random projections against N(0, 1).
- `vicreg`: VICReg's variance and covariance terms.
- `none`: zero; without a regulariser the embeddings collapse (tests/test_training.py shows it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from pwm.losses.sigreg import SIGReg
from pwm.losses.vicreg import VICReg


class NoRegularizer(nn.Module):
    """Zero: the ablation that shows the collapse a regulariser prevents."""

    def forward(self, z: Tensor, step: int) -> Tensor:  # (T, B, D)
        return torch.zeros((), device=z.device)


# name -> the regulariser, given SIGReg's number of random directions M
REGULARIZERS: dict[str, Callable[[int], nn.Module]] = {
    "sigreg": SIGReg,
    "vicreg": lambda num_directions: VICReg(),
    "none": lambda num_directions: NoRegularizer(),
}
