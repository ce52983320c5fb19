"""Prediction targets: the embeddings the predictor's outputs are compared with (DESIGN 5.3).

A target is a small module, called once per training step as `target(obs, z)` with the window's
frames obs (B, L, ...) and their online embeddings z (B, L, D); it returns the (B, L, D)
embeddings whose positions 1..L-1 the predictions of positions 0..L-2 are compared with.
`update(model)` runs after every optimiser step. `TARGETS[name](model, ema_momentum)` builds the
target that `model.target` names; a new target is one more entry.

- `online` (LeWM): z itself; the prediction error's gradient reaches the encoder on both sides.
- `stopgrad`: z detached; the encoder learns through the context frames only, so nothing pays it
  to drop from z what the predictor cannot predict.
- `ema`: the embeddings of an EMA copy of encoder and projector, without gradient (BYOL /
  I-JEPA); the copy follows the online weights after every step.
- `frozen`: z, with encoder and projector frozen at their initialisation (a fixed random feature
  map that cannot learn to drop anything; their BatchNorm statistics still track the data).
- `oracle`: z, which the builder makes the standardised simulator state (builder.py): nothing
  behind z learns, so the predictor is tested alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from einops import rearrange
from torch import Tensor, nn

from pwm.models.jepa import WorldModel


class OnlineTarget(nn.Module):
    """z itself, gradients included (LeWM); the base of the other targets."""

    def forward(self, obs: Tensor, z: Tensor) -> Tensor:  # (B, L, ...), (B, L, D)
        return z  # (B, L, D)

    def update(self, model: WorldModel) -> None:
        """After every optimiser step: nothing to do."""


class StopGradTarget(OnlineTarget):
    """z detached: the prediction error reaches the encoder through the context frames only."""

    def forward(self, obs: Tensor, z: Tensor) -> Tensor:  # (B, L, ...), (B, L, D)
        return z.detach()  # (B, L, D)


class FrozenTarget(OnlineTarget):
    """z; freezes the model's encoder and projector (requires_grad off) when it is built."""

    def __init__(self, model: WorldModel):
        super().__init__()
        model.encoder.requires_grad_(False)
        model.projector.requires_grad_(False)


class EMATarget(OnlineTarget):
    """Embeddings by an EMA copy of encoder and projector, no gradient (BYOL / I-JEPA).

    Args:
        model: the online world model, whose encoder and projector are copied.
        momentum: the EMA decay m; after each step copy <- m * copy + (1 - m) * online, and the
            copy's buffers (BatchNorm statistics) are the online ones.
    """

    def __init__(self, model: WorldModel, momentum: float):
        super().__init__()
        if not 0 <= momentum <= 1:
            raise ValueError(f"model.ema_momentum must be in [0, 1], got {momentum}")
        self.momentum = momentum
        self.encoder = copy.deepcopy(model.encoder).requires_grad_(False)
        self.projector = copy.deepcopy(model.projector).requires_grad_(False)

    @torch.no_grad()
    def forward(self, obs: Tensor, z: Tensor) -> Tensor:  # (B, L, ...), (B, L, D)
        flat = self.projector(self.encoder(obs.flatten(0, 1))).flatten(1)  # (B*L, D)
        return rearrange(flat, "(b l) d -> b l d", b=obs.shape[0])  # (B, L, D)

    @torch.no_grad()
    def update(self, model: WorldModel) -> None:
        """Move the copy towards the online encoder and projector."""
        pairs = ((model.encoder, self.encoder), (model.projector, self.projector))
        for src, dst in pairs:
            for ps, pd in zip(src.parameters(), dst.parameters(), strict=True):
                pd.lerp_(ps, 1 - self.momentum)
            for bs, bd in zip(src.buffers(), dst.buffers(), strict=True):
                bd.copy_(bs)


# name -> the target, given the online model and the EMA momentum
TARGETS: dict[str, Callable[[WorldModel, float], OnlineTarget]] = {
    "online": lambda model, ema_momentum: OnlineTarget(),
    "stopgrad": lambda model, ema_momentum: StopGradTarget(),
    "ema": EMATarget,
    "frozen": lambda model, ema_momentum: FrozenTarget(model),
    "oracle": lambda model, ema_momentum: OnlineTarget(),  # z is the state itself (builder.py)
}
