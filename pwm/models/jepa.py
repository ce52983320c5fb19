"""The JEPA world model: encoder -> projector -> embedding; predictor over embeddings (LeWM).

Composes injected parts and never reads a config; a predictor is called as
`predictor(z, actions, last=False)` (`last`: the last position only, models/predictor.py).
`encode` embeds every frame of a batch of windows once; `predict` gives, at every position t,
the prediction of z_{t+1} from the last H embeddings and the action a_t; `rollout` predicts
autoregressively from a context with given future actions (for the consequence probe);
`predict_dist` also returns the predictor's log-variance (None without a variance head) and
`error` turns a prediction and its target into the per-position surprise the probes use: the
squared error per feature, or with a variance head the Gaussian negative log-likelihood per
feature (losses/prediction.py: the training loss is the mean of the same quantity). An
object-centric encoder gives k object features per frame, which the projector maps one by one
and `encode` concatenates.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from pwm.losses.prediction import surprise


class WorldModel(nn.Module):
    """encoder + projector (frame -> z) and predictor ((z, a)_{<=t} -> z_{t+1})."""

    def __init__(self, encoder: nn.Module, projector: nn.Module, predictor: nn.Module):
        super().__init__()
        self.encoder, self.projector, self.predictor = encoder, projector, predictor

    def encode(self, obs: Tensor) -> Tensor:  # (B, T, *obs_shape)
        B = obs.shape[0]
        flat = obs.flatten(0, 1)  # (B*T, *obs_shape)
        z = self.projector(self.encoder(flat)).flatten(1)  # (B*T, D); objects concatenated
        return rearrange(z, "(b t) d -> b t d", b=B)  # (B, T, D)

    def predict(self, z: Tensor, actions: Tensor, last: bool = False) -> Tensor:
        """(B, T, D), (B, T, A) -> (B, T, D): position t predicts z_{t+1}; `last`: (B, 1, D)."""
        return self.predictor(z, actions, last=last)

    def predict_dist(self, z: Tensor, actions: Tensor, last: bool = False):
        """As `predict`, returning (mean, log-variance or None), each (B, T | 1, D)."""
        return self.predictor(z, actions, last=last, logvar=True)

    @staticmethod
    def error(mean: Tensor, target: Tensor, logvar: Tensor | None = None) -> Tensor:
        """(..., D) each -> (...,): the per-position surprise (losses.prediction.surprise)."""
        return surprise(mean, target, logvar)

    @torch.no_grad()
    def rollout(self, z_context: Tensor, actions: Tensor) -> Tensor:
        """Predict len(actions) - T0 + 1 future embeddings autoregressively.

        z_context (B, T0, D) are encoded frames; actions (B, T0 + S - 1, A) cover the context and
        the S steps to imagine. Returns (B, S, D): predictions of z_{T0}, ..., z_{T0+S-1}.
        """
        z = z_context
        T0, steps = z.shape[1], actions.shape[1] - z_context.shape[1] + 1
        H = self.predictor.history
        out = []
        for s in range(steps):
            ctx = z[:, -H:]  # (B, <=H, D)
            a = actions[:, T0 + s - ctx.shape[1] : T0 + s]  # (B, <=H, A)
            nxt = self.predict(ctx, a, last=True)  # (B, 1, D)
            out.append(nxt)
            z = torch.cat([z, nxt], dim=1)  # (B, T0+s+1, D)
        return torch.cat(out, dim=1)  # (B, S, D)
