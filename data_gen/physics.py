"""The physics world (DESIGN 3.2): N equal discs in a unit box, the baseline's training data.

Dynamics, per frame (dt = 1): the ego disc 0 receives the recorded force `actions[t]` as a
velocity kick (unit mass), then every disc moves at constant velocity for one frame, with
elastic collisions against the walls and against each other, resolved exactly by event-driven
simulation: each episode advances to its next time of impact, resolves it, and repeats until the
frame is over. Nothing ever overlaps, and every disc-disc impact conserves the pair's momentum
and kinetic energy to rounding (equal masses: the normal components of the velocities swap).
All of it is numpy over a batch of episodes; the loop is over frames and events only.

The ego's force comes from a smooth random policy: `f_t = clip(xi_t - ego_drag * v_ego, |f| <=
force_max)`, where `xi` is an Ornstein-Uhlenbeck (AR(1)) process with per-frame correlation
`ego_smoothness`, scaled so that the ego's stationary velocity has std `speed` per axis like the
other discs. The drag keeps the ego's energy bounded, and is small, so a collision moves the force
only a little. `rollout` also replays recorded actions open-loop (VoE items).

Arrays per episode (DESIGN 3.4), T = frames, N = num_objects, S = image_size:
`pixels` (T, S, S, 3) uint8; with `crop_size` C, `crops` (T, N (2 + 3 C^2)) float32 (per disc
its drawn position and the C x C pixels around it, render.crop_observation); `state` (T, 6N)
float32, per object (x, y, vx, vy, cue_c, cue_d),
object-major (reshape to (T, N, 6)), cue columns zero here (Polis uses the same layout); with
`state_links`, N more zero columns per object (T, N (6 + N)): Polis's link one-hot, which
physics never draws, so a model can be probed across worlds on a state with links;
`actions` (T, 2) float32, the force applied at frame t (moves t -> t+1); ground truth
`positions`, `velocities` (T, N, 2) float64 (velocity at frame t, before that frame's force);
`collisions` (T, N, N) bool, pair (i, j) collided during the move t -> t+1 (symmetric);
`wall_hits` (T, N) bool, disc i hit a wall during the move t -> t+1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from data_gen.render import PALETTE, crop_observation, render

MAX_EVENTS = 500  # impacts resolved per frame before giving up (a jam); never reached in practice
OFFSCREEN = -1.0  # box coordinate at which a removed (vanished) disc is drawn: nowhere


@dataclass(frozen=True)
class PhysicsConfig:
    """The generator config of the physics world; every field is a `pwm generate physics` option.

    num_objects: discs in the box (1..12, one palette colour each), disc 0 is the ego.
    radius: disc radius in box units (the box is [0, 1]^2).
    image_size: rendered frame side in pixels (>= 16).
    frames: frames per episode.
    speed: typical disc speed, box units per frame (initial velocities N(0, speed^2) per axis).
    force_max: largest force (velocity change per frame) on the ego; 0 disables the ego's policy.
    ego_drag: the policy's velocity feedback (keeps the ego's speed stationary), in (0, 1).
    ego_smoothness: per-frame correlation of the policy's random force (OU process), in [0, 1).
    state_links: the state's per-object link columns (all zero: no exchanges here), the same
        layout as `pwm generate polis --state-links` (render.state_layout).
    crop_size: side (pixels) of the object crops written as the `crops` observation (per disc
        its drawn position and the crop of the frame around it, render.crop_observation, as
        `pwm generate polis --crops`; an undrawn disc is at OFFSCREEN: its crop is background);
        0: none.
    """

    num_objects: int = 6
    radius: float = 0.06
    image_size: int = 64
    frames: int = 64
    speed: float = 0.015
    force_max: float = 0.004
    ego_drag: float = 0.05
    ego_smoothness: float = 0.95
    state_links: bool = False
    crop_size: int = 0

    def validate(self) -> None:
        """Raise ValueError (one line, naming the option) if the config cannot be simulated."""
        n, r = self.num_objects, self.radius
        if not 1 <= n <= len(PALETTE):
            raise ValueError(f"--num-objects must be in [1, {len(PALETTE)}], got {n}")
        if not 0 < r < 0.5:
            raise ValueError(f"--radius must be in (0, 0.5) (box units), got {r}")
        if r > max_radius(n):
            raise ValueError(
                f"--radius {r} is too large for {n} discs in the unit box: need <= "
                f"{max_radius(n):.4f} (or fewer --num-objects)"
            )
        if self.image_size < 16:
            raise ValueError(f"--image-size must be >= 16, got {self.image_size}")
        if self.frames < 1:
            raise ValueError(f"--frames must be >= 1, got {self.frames}")
        if not (self.crop_size == 0 or 2 <= self.crop_size <= self.image_size):
            raise ValueError(
                f"--crops must be 0 or in [2, --image-size {self.image_size}], got {self.crop_size}"
            )
        if not 0 <= self.speed <= r:
            raise ValueError(f"--speed must be in [0, --radius] (per frame), got {self.speed}")
        if not 0 <= self.force_max <= r:
            raise ValueError(f"--force-max must be in [0, --radius], got {self.force_max}")
        if not 0 < self.ego_drag < 1:
            raise ValueError(f"--ego-drag must be in (0, 1), got {self.ego_drag}")
        if not 0 <= self.ego_smoothness < 1:
            raise ValueError(f"--ego-smoothness must be in [0, 1), got {self.ego_smoothness}")

    def meta(self) -> dict:
        return asdict(self)


def max_radius(num_objects: int) -> float:
    """Largest radius for which `num_objects` discs always fit (a k x k grid, k = ceil(sqrt(N)))."""
    k = int(np.ceil(np.sqrt(num_objects)))
    return 1.0 / (2 * (k + 1))


def initial_state(cfg: PhysicsConfig, rng: np.random.Generator, n: int):
    """Non-overlapping positions (n, N, 2) inside the box and Gaussian velocities (n, N, 2).

    Rejection sampling of whole episodes (a few rounds); episodes still overlapping then take a
    jittered k x k grid (cell side >= 2 r by `max_radius`), so any valid config terminates.
    """
    N, r = cfg.num_objects, cfg.radius
    pos = rng.uniform(r, 1 - r, size=(n, N, 2))  # (n, N, 2)
    for _ in range(20):
        bad = _overlapping(pos, r)
        if not bad.any():
            break
        pos[bad] = rng.uniform(r, 1 - r, size=(int(bad.sum()), N, 2))
    bad = _overlapping(pos, r)
    if bad.any():
        k = int(np.ceil(np.sqrt(N)))
        side = (1 - 2 * r) / k  # cell side; centres stay r inside their cell
        cells = np.argsort(rng.random((int(bad.sum()), k * k)), axis=1)[:, :N]  # (b, N)
        corner = np.stack([cells % k, cells // k], -1) * side + r  # (b, N, 2)
        pos[bad] = corner + r + rng.random((int(bad.sum()), N, 2)) * (side - 2 * r)
    vel = rng.normal(0.0, cfg.speed, size=(n, N, 2))  # (n, N, 2)
    return pos, vel


def _overlapping(pos: np.ndarray, r: float) -> np.ndarray:
    """(n,) bool: any pair of discs closer than 2r."""
    d = np.linalg.norm(pos[:, :, None] - pos[:, None, :], axis=-1)  # (n, N, N)
    d[:, np.arange(pos.shape[1]), np.arange(pos.shape[1])] = np.inf
    return (d < 2 * r).any(axis=(1, 2))


class EgoPolicy:
    """Smooth random force on the ego: an OU force minus a small drag (module doc)."""

    def __init__(self, cfg: PhysicsConfig, rng: np.random.Generator, n: int):
        self.cfg = cfg
        rho, a = cfg.ego_smoothness, 1.0 - cfg.ego_drag
        # std of xi that makes v_{t+1} = a v_t + xi_t stationary with std `speed`
        self.sigma = cfg.speed * np.sqrt((1 - a**2) * (1 - rho * a) / (1 + rho * a))
        self.noise = rng.standard_normal((cfg.frames + 1, n, 2))  # (T + 1, n, 2)
        self.xi = self.sigma * self.noise[0]  # (n, 2) stationary start

    def __call__(self, t: int, pos: np.ndarray, vel: np.ndarray) -> np.ndarray:
        c, rho = self.cfg, self.cfg.ego_smoothness
        if t > 0:
            self.xi = rho * self.xi + np.sqrt(1 - rho**2) * self.sigma * self.noise[t]
        force = self.xi - c.ego_drag * vel[:, 0]  # (n, 2)
        norm = np.linalg.norm(force, axis=-1, keepdims=True)
        return force * np.minimum(1.0, c.force_max / np.maximum(norm, 1e-300))  # (n, 2)


def advance(pos, vel, r, dt=1.0, alive=None, ghost=None):
    """Move discs for `dt` with exact elastic wall and disc-disc impacts (event-driven).

    pos, vel (n, N, 2) are updated in place. alive (n, N) bool: removed discs neither move nor
    collide. ghost (n, N, N) bool: pairs that pass through each other. Returns the events of the
    move: collisions (n, N, N) bool (symmetric) and wall_hits (n, N) bool.
    """
    n, N = pos.shape[:2]
    collisions = np.zeros((n, N, N), dtype=bool)
    walls = np.zeros((n, N), dtype=bool)
    blocked = np.zeros((n, N, N), dtype=bool) if ghost is None else ghost.copy()
    blocked |= np.eye(N, dtype=bool) | ~np.triu(np.ones((N, N), dtype=bool))
    if alive is not None:
        vel[~alive] = 0.0
        blocked |= ~alive[:, :, None] | ~alive[:, None, :]
    remaining = np.full(n, float(dt))
    active = np.arange(n)
    for _ in range(MAX_EVENTS):
        p, v, left = pos[active], vel[active], remaining[active]  # (a, N, 2), (a, N, 2), (a,)
        t_wall = _wall_times(p, v, r)  # (a, N, 2)
        t_pair = np.where(blocked[active], np.inf, _pair_times(p, v, r))  # (a, N, N)
        times = np.concatenate(
            [t_wall.reshape(len(active), -1), t_pair.reshape(len(active), -1)], 1
        )
        first = np.argmin(times, axis=1)  # (a,) earliest event
        t_hit = times[np.arange(len(active)), first]
        hit = t_hit <= left
        step = np.where(hit, t_hit, left)  # (a,)
        pos[active] = p + v * step[:, None, None]
        remaining[active] = left - step
        e, k = active[hit], first[hit]
        is_wall = k < 2 * N
        _bounce_wall(vel, walls, e[is_wall], k[is_wall] // 2, k[is_wall] % 2)
        pair = k[~is_wall] - 2 * N
        _bounce_pair(pos, vel, collisions, e[~is_wall], pair // N, pair % N)
        active = e
        if not len(active):
            return collisions, walls
    raise RuntimeError(f"more than {MAX_EVENTS} impacts in one frame (discs jammed)")


def _wall_times(p, v, r):
    """Time until each disc reaches each wall axis (a, N, 2); inf if moving away or still."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(v > 0, (1 - r - p) / v, np.where(v < 0, (r - p) / v, np.inf))
    return np.maximum(t, 0.0)


def _pair_times(p, v, r):
    """Time until each pair (i, j) touches (a, N, N); inf if not approaching or missing."""
    dp = p[:, None, :, :] - p[:, :, None, :]  # (a, N, N, 2) = p_j - p_i
    dv = v[:, None, :, :] - v[:, :, None, :]  # (a, N, N, 2)
    a = (dv**2).sum(-1)  # (a, N, N)
    b = (dp * dv).sum(-1)
    c = (dp**2).sum(-1) - (2 * r) ** 2
    disc = b**2 - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    return np.where((b < 0) & (disc >= 0) & (a > 0), np.maximum(t, 0.0), np.inf)


def _bounce_wall(vel, walls, e, i, axis):
    vel[e, i, axis] = -vel[e, i, axis]
    walls[e, i] = True


def _bounce_pair(pos, vel, collisions, e, i, j):
    """Equal-mass elastic impact: exchange the velocity components along the line of centres."""
    normal = pos[e, j] - pos[e, i]  # (m, 2)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    dvn = ((vel[e, i] - vel[e, j]) * normal).sum(-1, keepdims=True) * normal  # (m, 2)
    vel[e, i] -= dvn
    vel[e, j] += dvn
    collisions[e, i, j] = collisions[e, j, i] = True


def rollout(pos, vel, r, frames, policy, hooks=None):
    """Simulate `frames` frames from (pos, vel) (n, N, 2); returns a dict of trajectories.

    policy(t, pos, vel) -> force (n, 2) on the ego at frame t. hooks(t, pos, vel) -> dict of
    `advance` keyword arguments (alive, ghost) may also modify pos/vel in place before the move
    (VoE items). The move after the last frame is simulated too, so every event row is complete.
    """
    pos, vel = pos.copy(), vel.copy()
    n, N = pos.shape[:2]
    out = {
        "positions": np.empty((frames, n, N, 2)),
        "velocities": np.empty((frames, n, N, 2)),
        "actions": np.empty((frames, n, 2)),
        "collisions": np.empty((frames, n, N, N), dtype=bool),
        "wall_hits": np.empty((frames, n, N), dtype=bool),
    }
    for t in range(frames):
        out["positions"][t], out["velocities"][t] = pos, vel
        force = policy(t, pos, vel)  # (n, 2)
        out["actions"][t] = force
        vel[:, 0] += force
        extra = hooks(t, pos, vel) if hooks else {}
        out["collisions"][t], out["wall_hits"][t] = advance(pos, vel, r, 1.0, **extra)
    return {k: np.swapaxes(a, 0, 1) for k, a in out.items()}  # (n, T, ...)


def episode_arrays(cfg: PhysicsConfig, traj: dict, colors=None, visible=None) -> dict:
    """Render a trajectory batch and assemble the dataset arrays of the module doc.

    colors (n, T, N, 3) uint8 (default: PALETTE per disc); visible (n, T, N) bool (default: all):
    an invisible disc is not drawn and its state row is zero.
    """
    pos, vel = traj["positions"], traj["velocities"]  # (n, T, N, 2)
    n, T, N = pos.shape[:3]
    colors = PALETTE[:N] if colors is None else colors
    shown = np.where(visible[..., None], pos, OFFSCREEN) if visible is not None else pos
    pixels = render(shown, cfg.radius, cfg.image_size, colors)  # (n, T, S, S, 3)
    empty = 2 + (N if cfg.state_links else 0)  # cue (and link) columns: nothing drawn here
    state = np.concatenate([pos, vel, np.zeros((n, T, N, empty))], axis=-1)  # (n, T, N, F)
    if visible is not None:
        state = state * visible[..., None]
    crops = {"crops": crop_observation(pixels, shown, cfg.crop_size)} if cfg.crop_size else {}
    return crops | {
        "pixels": pixels,
        "state": state.reshape(n, T, -1).astype(np.float32),  # (n, T, F N)
        "actions": traj["actions"].astype(np.float32),  # (n, T, 2)
        "positions": pos,
        "velocities": vel,
        "collisions": traj["collisions"],
        "wall_hits": traj["wall_hits"],
    }


def simulate(cfg: PhysicsConfig, rng: np.random.Generator, n: int) -> dict:
    """`n` episodes of the physics world as dataset arrays (the writer's `simulate`)."""
    pos, vel = initial_state(cfg, rng, n)
    policy = EgoPolicy(cfg, rng, n)
    return episode_arrays(cfg, rollout(pos, vel, cfg.radius, cfg.frames, policy))
