"""Closed-loop planning in the physics world (DESIGN 3.2): the ego disc 0 reaches a goal
position (`reach`), or pushes disc 1 to one (`push`, a Push-T-like task), in the simulator.

Every episode starts from `data_gen.physics.initial_state` (the training distribution: 6 discs
moving at `speed`) with a goal drawn uniformly in the box at least `min_distance` from the
controlled disc. A control step is one model step: `frame_skip` frames during which one force is
applied to the ego every frame (the block's per-frame actions, all equal: `tile_block`), clipped
to |f| <= force_max as in the training data; the world then moves by `advance` (exact elastic
collisions). An episode succeeds when the controlled disc's centre comes within `tolerance` of
the goal at any frame. The goal observation is the current state with the controlled disc at the
goal and at rest (the rest of the scene as it is now), so with `goal_objects` = (that disc,) the
cost compares only its part of an object-centric embedding.

Controllers, run on B episodes at once (CEM plans them as B problems of one batch):
- `model`: CEM in the world model's latent space (latent.LatentScore), receding horizon;
- `sim`: the same CEM with the true simulator as the model (the ceiling): a candidate's cost is
  the least squared distance of the disc to the goal over the planned frames (the success
  criterion itself, simulated exactly from the true state);
- `random`: a uniformly random force per step.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from data_gen.physics import PhysicsConfig, advance, initial_state
from pwm.models import WorldModel
from pwm.planning.cem import ActionSpace, CEMConfig, PlanningError, RecedingHorizon
from pwm.planning.latent import LatentScore, encode, goal_dims, tile_block


@dataclass(frozen=True)
class PhysicsTask:
    """A goal-reaching task in the physics world.

    task: `reach` (the ego to the goal) or `push` (disc 1 to the goal, moved by the ego).
    steps: control steps per episode (each `frame_skip` frames).
    frame_skip: frames per control step (the model's data.frame_skip).
    tolerance: success radius around the goal (box units).
    min_distance: least distance of the goal from the controlled disc's start.
    context: observed steps the model is given (<= its history).
    """

    task: str = "reach"
    steps: int = 10
    frame_skip: int = 6
    tolerance: float = 0.06
    min_distance: float = 0.3
    context: int = 1

    def validate(self) -> PhysicsTask:
        if self.task not in ("reach", "push"):
            raise PlanningError(f"--task must be reach or push, got {self.task!r}")
        for name in ("steps", "frame_skip", "context"):
            if getattr(self, name) < 1:
                raise PlanningError(f"--{name.replace('_', '-')} must be >= 1")
        if not self.tolerance > 0 or not 0 <= self.min_distance < 1:
            raise PlanningError("--tolerance must be > 0 and --min-distance in [0, 1)")
        return self

    @property
    def target(self) -> int:
        """The disc that must reach the goal."""
        return 0 if self.task == "reach" else 1

    def meta(self) -> dict:
        return asdict(self)


def observe(pos: np.ndarray, vel: np.ndarray) -> np.ndarray:
    """(B, N, 2) each -> the physics state (B, 6N) float32 (cue columns zero, DESIGN 3.4)."""
    per = np.concatenate([pos, vel, np.zeros_like(pos)], -1)  # (B, N, 6)
    return per.reshape(len(pos), -1).astype(np.float32)


def goal_observation(pos, vel, goal, target: int) -> np.ndarray:
    """The current state with disc `target` at `goal` (B, 2), at rest: (B, 6N)."""
    p, v = pos.copy(), vel.copy()
    p[:, target], v[:, target] = goal, 0.0
    return observe(p, v)


def clip_force(f: np.ndarray, force_max: float) -> np.ndarray:
    """Clip per-frame forces (..., 2) to norm <= force_max (the training data's limit)."""
    norm = np.linalg.norm(f, axis=-1, keepdims=True)
    return f * np.minimum(1.0, force_max / np.maximum(norm, 1e-12))


def draw_episodes(cfg: PhysicsConfig, task: PhysicsTask, rng: np.random.Generator, n: int):
    """Initial positions, velocities (n, N, 2) and goals (n, 2), goals >= min_distance away."""
    if task.task == "push" and cfg.num_objects < 2:
        raise PlanningError("--task push needs at least 2 discs")
    pos, vel = initial_state(cfg, rng, n)
    r = cfg.radius
    goal = rng.uniform(r, 1 - r, (n, 2))
    for _ in range(100):
        near = np.linalg.norm(goal - pos[:, task.target], axis=-1) < task.min_distance
        if not near.any():
            break
        goal[near] = rng.uniform(r, 1 - r, (int(near.sum()), 2))
    return pos, vel, goal


def step_block(cfg: PhysicsConfig, pos, vel, force: np.ndarray, frames: int, record=None):
    """Apply `force` (n, 2) to the ego every frame for `frames` frames (in place); `record`
    (a list) gets each frame's positions copy after the move."""
    force = clip_force(force, cfg.force_max)
    for _ in range(frames):
        vel[:, 0] += force
        advance(pos, vel, cfg.radius)
        if record is not None:
            record.append(pos.copy())


def force_space(cfg: PhysicsConfig) -> ActionSpace:
    f = cfg.force_max
    return ActionSpace(low=(-f, -f), high=(f, f))


class SimScore:
    """CEM's score with the simulator as the model: (B, S, H, 2) forces -> least squared
    distance of the target disc to the goal over the H steps' frames, simulated exactly."""

    def __init__(self, cfg, task: PhysicsTask, pos, vel, goal):
        self.cfg, self.task, self.pos, self.vel, self.goal = cfg, task, pos, vel, goal

    def __call__(self, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        B, S, H = u.shape[:3]
        N = self.pos.shape[1]
        pos = np.repeat(self.pos, S, axis=0).reshape(B * S, N, 2)
        vel = np.repeat(self.vel, S, axis=0).reshape(B * S, N, 2)
        forces = u.double().numpy().reshape(B * S, H, 2)
        goal = np.repeat(self.goal, S, axis=0)
        frames: list = []
        for h in range(H):
            step_block(self.cfg, pos, vel, forces[:, h], self.task.frame_skip, frames)
        d = np.stack([((p[:, self.task.target] - goal) ** 2).sum(-1) for p in frames])  # (F, BS)
        return torch.from_numpy(d.min(0).reshape(B, S)).float()


def run_episodes(
    controller: str,
    cfg: PhysicsConfig,
    task: PhysicsTask,
    episodes: int,
    seed: int,
    cem: CEMConfig | None = None,
    model: WorldModel | None = None,
    goal_objects: tuple[int, ...] | None = None,
    batch: int = 50,
    film: bool = False,
    goal_obs: np.ndarray | None = None,
    terminal: bool = True,
) -> dict:
    """Run `episodes` closed-loop episodes (in batches of `batch`) of one controller.

    Episodes are drawn from np.random.default_rng(seed) (the same ones for every controller
    and budget); CEM's samples from a torch.Generator seeded with seed + 1. `goal_obs` (6N,): one
    goal observation for every episode (the target disc's goal is its position there; the goal
    embedding is its encoding, not the current scene's). `terminal`: the model's cost at the
    last planned step (LeWM) or summed over the steps. Returns per-episode
    success, least and final distance, the time per decision (wall seconds of planning per
    control step of one episode, amortised over the batch) and, with `film`, episode 0's
    per-frame positions and goal.
    """
    task.validate()
    if controller not in ("model", "sim", "random"):
        raise PlanningError(f"unknown controller {controller!r}; expected model, sim or random")
    if controller == "model" and model is None:
        raise PlanningError("the model controller needs a checkpoint (--ckpt)")
    rng = np.random.default_rng(seed)
    pos0, vel0, goal0 = draw_episodes(cfg, task, rng, episodes)
    if goal_obs is not None:
        t = 6 * task.target
        goal0 = np.broadcast_to(np.asarray(goal_obs, float)[t : t + 2], goal0.shape).copy()
    gen = torch.Generator().manual_seed(seed + 1)
    act_rng = np.random.default_rng(seed + 2)
    space = force_space(cfg)
    dims = goal_dims(model, goal_objects) if controller == "model" else None
    least, final, plan_time, plans = [], [], 0.0, 0
    frames_of_first = None
    for start in range(0, episodes, batch):
        sl = slice(start, min(start + batch, episodes))
        pos, vel, goal = pos0[sl].copy(), vel0[sl].copy(), goal0[sl]
        n = len(pos)
        best = np.linalg.norm(pos[:, task.target] - goal, axis=-1)
        obs_hist, act_hist = [observe(pos, vel)], []
        planner = RecedingHorizon(space, cem, gen) if controller != "random" else None
        record = [pos.copy()] if film and start == 0 else None
        for _ in range(task.steps):
            t0 = time.perf_counter()
            if controller == "random":
                force = act_rng.uniform(-cfg.force_max, cfg.force_max, (n, 2))
            else:
                if controller == "sim":
                    score = SimScore(cfg, task, pos, vel, goal)
                else:
                    score = latent_score(model, task, obs_hist, act_hist, pos, vel, goal, dims,
                                         goal_obs, terminal)  # fmt: skip
                u, _ = planner.act(score, n)
                force = u.double().numpy()
                plan_time += time.perf_counter() - t0
                plans += n
            frames: list = []
            step_block(cfg, pos, vel, force, task.frame_skip, frames)
            for p in frames:
                best = np.minimum(best, np.linalg.norm(p[:, task.target] - goal, axis=-1))
            if record is not None:
                record += [p.copy() for p in frames]
            obs_hist.append(observe(pos, vel))
            block = np.tile(clip_force(force, cfg.force_max), task.frame_skip)  # (n, 2 S)
            act_hist.append(block.astype(np.float32))
        least.append(best)
        final.append(np.linalg.norm(pos[:, task.target] - goal, axis=-1))
        if record is not None:
            frames_of_first = {"positions": np.stack(record)[:, 0], "goal": goal[0]}
    least, final = np.concatenate(least), np.concatenate(final)
    return {
        "success": least < task.tolerance,
        "least_distance": least,
        "final_distance": final,
        "seconds_per_decision": plan_time / plans if plans else 0.0,
        "film": frames_of_first,
    }


def latent_score(model, task, obs_hist, act_hist, pos, vel, goal, dims, goal_obs=None,
                 terminal=True):  # fmt: skip
    """The LatentScore of the current step: context = the last `context` observed steps; the
    goal is `goal_obs` (the same for all) or the current scene with the target at its goal."""
    C = min(task.context, len(obs_hist))
    obs = np.stack(obs_hist[-C:], 1)  # (n, C, F)
    z = encode(model, obs)  # (n, C, D)
    n = len(pos)
    A = model.predictor.action_dim
    acts = act_hist[-(C - 1) :] if C > 1 else []
    ac = torch.from_numpy(np.stack(acts, 1)) if acts else torch.zeros(n, 0, A)
    if goal_obs is None:
        goal_obs = goal_observation(pos, vel, goal, task.target)  # (n, 6N)
    else:
        goal_obs = np.broadcast_to(np.asarray(goal_obs, np.float32), (n, len(goal_obs)))
    zg = encode(model, np.ascontiguousarray(goal_obs)[:, None])[:, 0]  # (n, D)
    S = task.frame_skip
    if A != 2 * S:
        raise PlanningError(
            f"the model's action has {A} features per step; the physics ego needs 2 per frame "
            f"x frame_skip {S} = {2 * S} (a model of another world or frame skip?)"
        )

    def to_action(u, k):
        return tile_block(u, S)  # (B, S, H, 2 S)

    return LatentScore(model, z, ac, zg, to_action, dims=dims, terminal=terminal)
