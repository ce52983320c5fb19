"""Planning in a world model's latent space: goal embeddings, the goal cost and the scorer CEM
calls (LeWM: the cost of a candidate is the distance of its predicted embedding to the encoding of
a goal observation).

`LatentScore` rolls every candidate action sequence out autoregressively from the encoded context
(`WorldModel.rollout`: the last C observed steps and the actions between them, then the H planned
steps), and scores the predicted embeddings: the squared distance to the goal embedding at the
last step (`terminal`, LeWM's cost) or summed over the steps, over the whole embedding or, for an
object-centric model, over the parts of chosen objects only (`goal_dims`: e.g. the ego's 16
features, so discs the ego cannot steer do not enter the cost), plus optional extra terms. A step
of a model trained with `data.frame_skip` S > 1 is a block of S frames whose action is the S
per-frame actions concatenated (pwm/data/datamodule.py `action_blocks`); `tile_block` repeats one
per-frame action over a block, the parametrisation the physics planner searches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from pwm.models import WorldModel
from pwm.planning.cem import PlanningError

CHUNK = 8192  # candidate sequences per predictor call (bounds memory at large budgets)


def check_goal(goal: np.ndarray, hparams: dict, name: str = "goal") -> None:
    """PlanningError (one line) if `goal` is not one observation of the model's kind and size:
    a state vector of obs_size features, or an obs_size x obs_size x 3 image."""
    kind, size = hparams.get("observation", "pixels"), int(hparams.get("obs_size", 64))
    shape = tuple(np.shape(goal))
    if kind not in ("state", "pixels"):
        raise PlanningError(f"goals are states or images; the model observes {kind}")
    if kind == "state":
        if len(shape) == 3:
            raise PlanningError(
                f"{name} is an image {'x'.join(map(str, shape))} but the model observes the "
                f"state ({size} features)"
            )
        if shape != (size,):
            raise PlanningError(f"{name} has shape {shape}, the model's state has {size} features")
        if not np.all(np.isfinite(goal)):
            raise PlanningError(f"{name} has non-finite values")
        return
    if len(shape) != 3:
        raise PlanningError(
            f"{name} is a state vector of shape {shape} but the model observes pixels "
            f"({size}x{size}x3 images)"
        )
    if shape != (size, size, 3):
        raise PlanningError(
            f"{name} image is {'x'.join(map(str, shape))} but the model's images are "
            f"{size}x{size}x3"
        )


def embed_dim(model: WorldModel) -> int:
    p = model.predictor
    return p.inp.in_features * p.objects


def goal_dims(model: WorldModel, objects: Sequence[int] | None) -> Tensor | None:
    """Embedding indices of the given objects (None: the whole embedding)."""
    if objects is None:
        return None
    k, D = model.predictor.objects, embed_dim(model)
    if k == 1:
        raise PlanningError("--goal-objects needs an object-centric model (model.objects > 1)")
    bad = [o for o in objects if not 0 <= o < k]
    if bad or not objects:
        raise PlanningError(f"--goal-objects must be object indices in [0, {k}), got {objects}")
    per = D // k
    return torch.cat([torch.arange(o * per, (o + 1) * per) for o in objects])


@torch.no_grad()
def encode(model: WorldModel, obs: np.ndarray | Tensor) -> Tensor:
    """Observations (B, T, *obs_shape) -> embeddings (B, T, D)."""
    x = torch.as_tensor(np.asarray(obs))
    return model.encode(x)


def goal_cost(z: Tensor, goal: Tensor, dims: Tensor | None = None, terminal: bool = True):
    """Predicted embeddings z (B, S, H, D), goal (B, D) -> squared distance (B, S): at the last
    step (terminal) or summed over the H steps; over `dims` only if given."""
    diff = z - goal[:, None, None]  # (B, S, H, D)
    if dims is not None:
        diff = diff[..., dims]
    per_step = diff.pow(2).sum(-1)  # (B, S, H)
    return per_step[..., -1] if terminal else per_step.sum(-1)


def tile_block(u: Tensor, frame_skip: int) -> Tensor:
    """One per-frame action (..., A) repeated over a block of S frames -> (..., A S)."""
    return u.repeat(*([1] * (u.dim() - 1)), frame_skip)


Extra = Callable[[Tensor, Tensor, Tensor], Tensor]  # (z (B,S,H,D), u, k) -> (B, S)


class LatentScore:
    """CEM's score for B problems: roll candidates out in the world model, cost to the goal.

    z_context (B, C, D): embeddings of the last C observed steps; a_context (B, C - 1, A): the
    action blocks between them; z_goal (B, D); to_action(u, k) -> (B, S, H, A): the model's
    action blocks of the candidates. The rollouts run on the device of z_context (a GPU model:
    pass its embeddings), the costs come back to the CPU.
    """

    def __init__(
        self,
        model: WorldModel,
        z_context: Tensor,
        a_context: Tensor,
        z_goal: Tensor,
        to_action: Callable[[Tensor, Tensor], Tensor],
        dims: Tensor | None = None,
        terminal: bool = True,
        extra: Extra | None = None,
    ):
        self.model, self.zc, self.ac, self.goal = model, z_context, a_context, z_goal
        self.to_action, self.dims, self.terminal, self.extra = to_action, dims, terminal, extra
        self.calls = 0

    @torch.no_grad()
    def predict(self, u: Tensor, k: Tensor) -> Tensor:
        """Predicted embeddings of the candidates (B, S, H, D)."""
        B, S, H = u.shape[:3]
        C, D = self.zc.shape[1:]
        a = self.to_action(u, k).float()  # (B, S, H, A)
        zc = self.zc[:, None].expand(B, S, C, D).reshape(B * S, C, D)
        A = self.ac.shape[-1]
        ac = self.ac[:, None].expand(B, S, C - 1, A).reshape(B * S, C - 1, A)
        acts = torch.cat([ac.float(), a.to(ac.device).reshape(B * S, H, -1)], dim=1)
        out = [
            self.model.rollout(zc[i : i + CHUNK], acts[i : i + CHUNK])
            for i in range(0, B * S, CHUNK)
        ]
        return torch.cat(out).reshape(B, S, H, D)

    def __call__(self, u: Tensor, k: Tensor) -> Tensor:
        self.calls += 1
        z = self.predict(u, k)
        dims = None if self.dims is None else self.dims.to(z.device)
        cost = goal_cost(z, self.goal, dims, self.terminal)
        cost = cost + self.extra(z, u, k) if self.extra is not None else cost
        return cost.cpu()  # CEM's candidates live on the CPU; the model may not
