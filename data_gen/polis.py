"""Polis, the social world (DESIGN 3.3): agents that move in a box and meet in repeated
prisoner's-dilemma exchanges, numpy over a batch of episodes, one explicit Generator.

All randomness of an episode is drawn up front into a `Scenario` (initial state, dispositions,
tremble rates, wander noise and the uniforms behind every decision), and `run(config, scenario,
script)` is deterministic given it. The item generator (polis_items.py) replays one scenario
under several `Script`s (forced executed actions, a trust-law violation, a teleport), so two
variants differ exactly where their scripts do.

Per frame t: the exchange round (if t is a positive multiple of `round_len`), the record of frame
t, then the move t -> t+1.
- Exchange: nearby agents (centre distance < exchange_radius) are paired greedily, closest
  first; each paired agent intends C with its disposition's probability (agents.py), the
  executed action flips with its tremble probability (not the ego's), and trust and memory
  update: the partner's trust builds slowly after a C (T += build (1 - T)) and collapses after an
  unjustified D (T *= 1 - collapse); a D is justified for the victim when it is a retaliation or
  a punishment (agents.classify). What a reciprocator answers is the world's `law`
  (polis_config.py: `reciprocity`, any defection it suffered at the pair's last meeting;
  `justice`, only an unjustified one, and it punishes partners it distrusts). Witnesses (third
  agents within witness_radius of the exchange's midpoint) update their trust in each player
  more weakly, and do not lower it for a retaliation (the pair's last exchange is public) or,
  under `justice`, for a defection on a partner the witness distrusts (standing rule). Cues and
  the link stay drawn for `cue_hold` frames.
- Move: a social force pulls agent i toward j with weight T[i, j] - trust_prior (attraction to
  the trusted, repulsion from the distrusted), computed from the trust matrix of `react_delay`
  rounds ago: agents take that long to act on a change of heart, which also keeps everyone's
  positions in two item variants identical for `react_delay` rounds after the round where they
  first differ (polis_items.py relies on it).
  Plus a personal-space repulsion, soft walls, wander noise and damping; overlaps are then
  projected apart, so discs never overlap (legible scenes).
- Ego (agent 0): its move and its C/D are exogenous, recorded actions. They come from a behaviour
  policy: the social force plus wander for the move, its disposition's choice (or, with
  probability ego_explore, a fair coin) for C/D, never trembled.

Arrays per episode (leading axes (B, T) from `run`; see `frame_arrays` for every name): `state`
(T, 6N) float32, per agent (x, y, vx, vy, cue_c, cue_d), agent-major as in physics (velocity =
the last frame's displacement); `actions` (T, 3) float32 = [move_x, move_y, cd]: the move in
units of config.ego_force (clipped to [-1, 1], applied t -> t+1), and cd = +1 if the ego
cooperates in the exchange at frame t+1, -1 if it defects there, 0 if it has no exchange then
(so the action at t determines the ego's cue on frame t+1). Per episode: `dispositions` (N,),
`tremble` (N,), `hobbesian` () (the episode's population).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from data_gen import agents
from data_gen.agents import C
from data_gen.polis_config import POPULATIONS, PolisConfig
from data_gen.polis_exchange import Social, exchange
from data_gen.render import CUE_C, CUE_D, PALETTE, crop_observation, render

DAMPING = 0.1  # fraction of velocity lost per frame
NEAR = 0.3  # distance below which the pull toward a trusted agent fades linearly
REPEL = 2.0  # repulsion from the distrusted is this much stronger than attraction
PERSONAL = 1.6  # personal-space radius, in disc diameters
CLEAR = 1.02  # overlaps are projected apart to this fraction of a disc diameter


def rounds(config: PolisConfig) -> int:
    """Number of exchange rounds in an episode (frames round_len, 2 round_len, ... < frames)."""
    return (config.frames - 1) // config.round_len


@dataclass
class Scenario:
    """Everything random about a batch of B episodes (N agents, T frames, R rounds)."""

    pos0: np.ndarray  # (B, N, 2) initial positions
    dispositions: np.ndarray  # (B, N) int8, index into agents.DISPOSITIONS
    tremble: np.ndarray  # (B, N) tremble probability
    hobbesian: np.ndarray  # (B,) bool, episode drawn from the hobbesian mix
    wander: np.ndarray  # (T, B, N, 2) standard normal
    u_intend: np.ndarray  # (R, B, N) uniform: intends C iff u < p(C)
    u_tremble: np.ndarray  # (R, B, N) uniform: trembles iff u < tremble
    u_explore: np.ndarray  # (R, B) uniform: the ego explores iff u < ego_explore

    @staticmethod
    def batch_axis(name: str) -> int:
        return 1 if name in ("wander", "u_intend", "u_tremble", "u_explore") else 0

    def take(self, index) -> Scenario:
        """The episodes at `index` (any integer index array; repeats replicate episodes)."""
        return Scenario(**{
            f.name: np.take(getattr(self, f.name), index, axis=self.batch_axis(f.name))
            for f in fields(self)
        })  # fmt: skip

    @staticmethod
    def cat(parts: list[Scenario]) -> Scenario:
        """Concatenate scenarios along the batch axis."""
        return Scenario(**{
            f.name: np.concatenate([getattr(p, f.name) for p in parts], Scenario.batch_axis(f.name))
            for f in fields(Scenario)
        })  # fmt: skip


@dataclass
class Script:
    """Interventions on a run (item variants); the default changes nothing."""

    force: np.ndarray  # (R, B, N) int8: executed action forced to C or D (-1: natural)
    erase: np.ndarray  # (R, B, N) bool: the agent updates on its partner's action as if it were C
    teleport_frame: np.ndarray  # (B,) int: frame at which teleport_agent jumps (-1: never)
    teleport_agent: np.ndarray  # (B,) int
    teleport_to: np.ndarray  # (B, 2) where it lands
    ego_move: np.ndarray | None = None  # (B, T, 2) float32: replayed ego moves (None: policy)

    @staticmethod
    def natural(config: PolisConfig, batch: int) -> Script:
        r, n = rounds(config), config.n_agents
        return Script(np.full((r, batch, n), -1, np.int8), np.zeros((r, batch, n), bool),
                      np.full(batch, -1), np.zeros(batch, int), np.zeros((batch, 2)))  # fmt: skip


def draw_scenario(config: PolisConfig, rng: np.random.Generator, batch: int) -> Scenario:
    """Draw B episodes' randomness from `rng`, in a fixed order."""
    n, t, r = config.n_agents, config.frames, rounds(config)
    hobbesian = rng.random(batch) < config.p_hobbesian
    mixes = list(config.weights.values())
    civil = np.cumsum(mixes[0])
    hobbes = np.cumsum(POPULATIONS["hobbesian"] if config.p_hobbesian > 0 else mixes[0])
    u = rng.random((batch, n))
    disp = np.where(
        hobbesian[:, None],
        np.searchsorted(hobbes / hobbes[-1], u, side="right"),
        np.searchsorted(civil / civil[-1], u, side="right"),
    )
    noisy = rng.random((batch, n)) < config.noisy_fraction
    # Initial positions: a random cell of a g x g grid per agent, jittered inside it.
    g = int(np.ceil(np.sqrt(n)))
    cell = (1 - 2 * config.radius) / g
    cells = np.argsort(rng.random((batch, g * g)), axis=1)[:, :n]  # (B, N) distinct cells
    jitter = (rng.random((batch, n, 2)) - 0.5) * (cell - 2 * config.radius)
    centre = np.stack([cells % g, cells // g], -1) * cell + config.radius + cell / 2
    return Scenario(
        pos0=centre + jitter,
        dispositions=np.minimum(disp, len(agents.POLICIES) - 1).astype(np.int8),
        tremble=np.where(noisy, config.noisy_tremble, config.tremble),
        hobbesian=hobbesian,
        wander=rng.standard_normal((t, batch, n, 2), dtype=np.float32),
        u_intend=rng.random((r, batch, n)),
        u_tremble=rng.random((r, batch, n)),
        u_explore=rng.random((r, batch)),
    )


def _sum_axis1(x: np.ndarray) -> np.ndarray:
    """x.sum(1) for x (N, M, ...), added in the order numpy's `sum` uses along a contiguous last
    axis (sequential below 8 terms; 8 running sums combined pairwise from 8 on), so batch-last
    arrays give the same bits as the equivalent batch-first `.sum(-1)`."""
    m = x.shape[1]
    if m < 8:
        total = 0.0 + x[:, 0]
        for k in range(1, m):
            total = total + x[:, k]
        return total
    acc = [x[:, k] for k in range(8)]
    k = 8
    while k < m - m % 8:
        acc = [acc[q] + x[:, k + q] for q in range(8)]
        k += 8
    total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    for q in range(k, m):
        total = total + x[:, q]
    return 0.0 + total


class Geometry(NamedTuple):
    """Pairwise offsets and distances of one frame, each (N, N, B), batch last:
    dx[i, j] = x_j - x_i, dy[i, j] = y_j - y_i, d = |(dx, dy)|.

    The movement code keeps the batch as the last (contiguous) axis: with N = 6 agents, numpy's
    loops over a trailing axis of length N cost far more than the arithmetic.
    """

    dx: np.ndarray
    dy: np.ndarray
    d: np.ndarray

    @staticmethod
    def of(pos: np.ndarray) -> Geometry:  # pos (N, 2, B)
        x, y = pos[:, 0], pos[:, 1]  # (N, B)
        dx, dy = x[None, :] - x[:, None], y[None, :] - y[:, None]  # (N, N, B)
        return Geometry(dx, dy, np.sqrt(dx * dx + dy * dy))


def pair(dist: np.ndarray, reach: float) -> np.ndarray:
    """Greedy closest-first matching of agents closer than `reach`, from distances (B, N, N):
    (B, N) partner or -1."""
    b, n = dist.shape[:2]
    d = np.where((dist >= reach) | np.eye(n, dtype=bool), np.inf, dist)  # (B, N, N)
    partner = np.full((b, n), -1)
    rows = np.arange(b)
    for _ in range(n // 2):
        i, j = np.divmod(d.reshape(b, -1).argmin(1), n)  # (B,), (B,)
        ok = np.isfinite(d[rows, i, j])
        if not ok.any():
            break
        bo, io, jo = rows[ok], i[ok], j[ok]
        partner[bo, io], partner[bo, jo] = jo, io
        for k in (io, jo):
            d[bo, k, :] = np.inf
            d[bo, :, k] = np.inf
    return partner


def social_pull(config: PolisConfig, trust: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Trust part of the social force, (N, N, B) batch last: T[i, j] - trust_prior, 0 on the
    diagonal; `trust` is (B, N, N). It changes once per round, so `run` computes it once a round."""
    n = trust.shape[1]
    pull = (trust - config.trust_prior).astype(dtype) * (1 - np.eye(n, dtype=dtype))
    return np.ascontiguousarray(pull.transpose(1, 2, 0))  # (N, N, B)


def _zero_diagonal(x: np.ndarray) -> np.ndarray:
    """Set x[i, i] = 0 in place for an (N, N, B) array (same as multiplying by 1 - eye)."""
    i = np.arange(x.shape[0])
    x[i, i] = 0
    return x


def _pair_sum(coef: np.ndarray, geo_dx: np.ndarray, geo_dy: np.ndarray) -> np.ndarray:
    """sum_j coef[i, j] (dx, dy)[i, j] for (N, N, B) arrays, as (N, 2, B)."""
    return np.stack([_sum_axis1(coef * geo_dx), _sum_axis1(coef * geo_dy)], 1)


def drive(config: PolisConfig, pos: np.ndarray, geo: Geometry, pull: np.ndarray) -> np.ndarray:
    """Social force plus personal space and soft walls, (N, 2, B); `pull` from `social_pull`."""
    n, r = pos.shape[0], config.radius
    w = pull * np.where(pull > 0, np.minimum(geo.d * (1 / NEAR), 1), REPEL)  # (N, N, B)
    space = _zero_diagonal(np.maximum(1 - geo.d * (1 / (PERSONAL * 2 * r)), 0))  # (N, N, B)
    coef = (config.social * 3 / max(1, n - 1)) * w - config.contact * space
    coef /= np.maximum(geo.d, 1e-9)
    force = _pair_sum(coef, geo.dx, geo.dy)  # (N, 2, B)
    wall = np.maximum(1 - (pos - r) / (2 * r), 0) - np.maximum(1 - (1 - r - pos) / (2 * r), 0)
    return force + config.contact * wall


def move(config: PolisConfig, pos: np.ndarray, vel: np.ndarray, force: np.ndarray):
    """One frame on (N, 2, B) arrays: damped velocity plus force, speed limit, walls, overlaps
    projected apart. Returns the new positions, the velocity (= this frame's displacement) and
    the geometry.

    Overlaps are pushed apart (half each) for up to 8 passes, each pass only over the episodes
    that still have an overlap; that shrinking working set is kept compact between passes.
    """
    r = config.radius
    clear = 2 * r * CLEAR
    n = pos.shape[0]
    v = (1 - DAMPING) * vel + force
    speed = np.sqrt(_sum_axis1(v * v))[:, None]  # (N, 1, B)
    v *= np.minimum(1.0, config.speed / np.maximum(speed, 1e-12))
    new = pos + v
    new = np.where(new < r, 2 * r - new, np.where(new > 1 - r, 2 * (1 - r) - new, new))
    geo = Geometry.of(new)
    # d[i, i] = 0 is always < clear: an episode overlaps iff more than n pairs are that close
    idx = np.flatnonzero(np.count_nonzero(geo.d < clear, axis=(0, 1)) > n)  # (b,)
    if len(idx) == 0:
        return new, new - pos, geo
    # The working set is small (a few episodes for up to 8 passes): batch-first there, where one
    # numpy call does what the batch-last layout needs N for.
    p = new[..., idx].transpose(2, 0, 1)  # (b, N, 2)
    dx, dy, d = (g[..., idx].transpose(2, 0, 1) for g in geo)  # (b, N, N) each
    diag = np.arange(n)
    for k in range(8):  # push overlapping discs apart (half each), only where some overlap
        if k:
            over = (d < clear).sum((1, 2)) > n  # (b,)
            if not over.all():
                done, back = idx[~over], ~over
                new[..., done] = p[back].transpose(1, 2, 0)
                for g, part in zip(geo, (dx, dy, d), strict=True):
                    g[..., done] = part[back].transpose(1, 2, 0)
                idx, p, dx, dy, d = idx[over], p[over], dx[over], dy[over], d[over]
                if len(idx) == 0:
                    break
        push = np.maximum(clear - d, 0)  # (b, N, N)
        push[:, diag, diag] = 0  # as multiplying by 1 - eye
        push /= 2 * np.maximum(d, 1e-9)
        step = np.stack([(push * dx).sum(-1), (push * dy).sum(-1)], -1)  # (b, N, 2)
        p = np.minimum(np.maximum(p - step, r), 1 - r)
        x, y = p[..., 0], p[..., 1]  # (b, N)
        dx, dy = x[:, None, :] - x[:, :, None], y[:, None, :] - y[:, :, None]  # (b, N, N)
        d = np.sqrt(dx * dx + dy * dy)
    new[..., idx] = p.transpose(1, 2, 0)
    for g, part in zip(geo, (dx, dy, d), strict=True):
        g[..., idx] = part.transpose(1, 2, 0)
    return new, new - pos, geo


def run(config: PolisConfig, sc: Scenario, script: Script | None = None) -> dict[str, np.ndarray]:
    """Simulate a batch; returns ground truth arrays with leading axes (B, T) (see frame_arrays)."""
    b, n = sc.dispositions.shape
    t_len, L = config.frames, config.round_len
    script = script or Script.natural(config, b)
    pos = np.ascontiguousarray(sc.pos0.astype(np.float32).transpose(1, 2, 0))  # (N, 2, B)
    vel = np.zeros_like(pos)
    geo = Geometry.of(pos)
    soc = Social.start(config, b, n)
    snaps = [soc.trust.copy()]
    cue = np.zeros((b, n), np.int8)
    link = np.full((b, n), -1, np.int8)
    out = {k: np.zeros((t_len, b, *shape), dtype) for k, (shape, dtype) in frame_arrays(n).items()}
    pull_of = -1, None  # (snapshot index, social_pull of that snapshot)
    for t in range(t_len):
        if t > 0 and t % config.round_len == 0:
            r = t // L - 1
            partner = pair(geo.d.transpose(2, 0, 1), config.exchange_radius)
            batch_first = pos.transpose(2, 0, 1)  # (B, N, 2) view
            rec = exchange(
                config, soc, sc, r, batch_first, partner, script.force[r], script.erase[r]
            )
            snaps.append(soc.trust.copy())
            paired = partner >= 0
            cue = np.where(paired, np.where(rec["executed"] == C, CUE_C, CUE_D), 0).astype(np.int8)
            link = partner.astype(np.int8)
            out["actions"][t - 1, :, 2] = np.where(paired[:, 0], 2.0 * rec["executed"][:, 0] - 1, 0)
            for k in ("partner", "intended", "executed", "prob", "event", "witness"):
                out[k][t] = rec[k]
        else:
            out["partner"][t], out["intended"][t], out["executed"][t] = -1, -1, -1
            out["prob"][t], out["event"][t], out["witness"][t] = 1.0, -1, False
        if t % L >= config.cue_hold:
            cue[:], link[:] = 0, -1
        out["positions"][t], out["velocities"][t] = pos.transpose(2, 0, 1), vel.transpose(2, 0, 1)
        out["trust"][t], out["cues"][t], out["links"][t] = soc.trust, cue, link
        # Move t -> t+1 from the trust of `react_delay` rounds ago.
        snap = max(len(snaps) - 1 - config.react_delay, 0)
        if pull_of[0] != snap:
            pull_of = snap, social_pull(config, snaps[snap], pos.dtype)
        force = drive(config, pos, geo, pull_of[1])  # (N, 2, B)
        force += config.wander * sc.wander[t].transpose(1, 2, 0)
        ego = np.clip(force[0] / config.ego_force, -1, 1)  # (2, B)
        if script.ego_move is not None:  # a replay with the ego's recorded moves
            ego = script.ego_move[:, t].T  # (2, B)
        out["actions"][t, :, :2] = ego.T
        force[0] = ego * config.ego_force
        if t + 1 < t_len:
            pos, vel, geo = move(config, pos, vel, force)
            jump = script.teleport_frame == t + 1
            if jump.any():
                pos[script.teleport_agent[jump], :, np.flatnonzero(jump)] = script.teleport_to[jump]
                geo = Geometry.of(pos)
    truth = {k: np.swapaxes(v, 0, 1) for k, v in out.items()}  # (B, T, ...)
    truth["dispositions"], truth["tremble"] = sc.dispositions, sc.tremble.astype(np.float32)
    truth["hobbesian"] = sc.hobbesian.astype(np.uint8)
    return truth


def frame_arrays(n: int) -> dict[str, tuple[tuple[int, ...], type]]:
    """Per-frame ground truth arrays: name -> (shape after (T, B), dtype)."""
    return {
        "positions": ((n, 2), np.float32),  # box coordinates
        "velocities": ((n, 2), np.float32),  # displacement of the last frame
        "trust": ((n, n), np.float32),  # trust[i, j] = i's trust in j, after this frame's round
        "partner": ((n,), np.int8),  # partner in this frame's exchange, -1 none
        "intended": ((n,), np.int8),  # 1 C, 0 D, -1 no exchange
        "executed": ((n,), np.int8),  # 1 C, 0 D, -1 no exchange
        "prob": ((n,), np.float32),  # exact policy probability of the executed action (1: none)
        "event": ((n,), np.int8),  # index into agents.EVENTS, -1 no exchange
        "witness": ((n, n), bool),  # witness[k, i]: k witnessed i's exchange
        "cues": ((n,), np.int8),  # cue drawn (render.CUE_*), held cue_hold frames
        "links": ((n,), np.int8),  # link drawn to this partner, -1 none
        "actions": ((3,), np.float32),  # the ego's [move_x, move_y, cd], see module docstring
    }


def observe(truth: dict[str, np.ndarray], links: bool = False) -> np.ndarray:
    """Symbolic observation (B, T, F N) float32: per agent (x, y, vx, vy, cue_c, cue_d) and,
    with `links`, a one-hot of the agent its exchange link is drawn to (`link_j`; all 0 without
    a link): the line the pixels show between partners (PolisConfig.state_links)."""
    cues = truth["cues"]
    parts = [
        truth["positions"],
        truth["velocities"],
        (cues == CUE_C)[..., None],
        (cues == CUE_D)[..., None],
    ]
    if links:
        n = cues.shape[-1]
        parts.append(truth["links"][..., None] == np.arange(n))  # (B, T, N, N): -1 matches none
    per = np.concatenate(parts, axis=-1)  # (B, T, N, F)
    return per.reshape(*per.shape[:2], -1).astype(np.float32)


def pixels(config: PolisConfig, truth: dict[str, np.ndarray], colors=None) -> np.ndarray:
    """Render (B, T, S, S, 3) uint8; `colors` (B, T, N, 3) overrides the identity palette."""
    n = truth["positions"].shape[2]
    colors = PALETTE[:n] if colors is None else colors
    return render(truth["positions"], config.radius, config.image_size, colors, truth["cues"],
                  truth["links"])  # fmt: skip


def simulate(config: PolisConfig, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    """`generate_dataset`'s simulate: B episodes of pixels, state, actions and ground truth."""
    truth = run(config, draw_scenario(config, rng, batch))
    truth["state"] = observe(truth, config.state_links)
    if config.image_size:
        truth["pixels"] = pixels(config, truth)
        add_crops(config, truth)
    return truth


def add_crops(config: PolisConfig, arrays: dict[str, np.ndarray]) -> None:
    """With `config.crop_size`, add the `crops` observation (render.crop_observation) read from
    the rendered `pixels` at the agents' `positions`."""
    if config.crop_size:
        arrays["crops"] = crop_observation(arrays["pixels"], arrays["positions"], config.crop_size)
