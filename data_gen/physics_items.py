"""Violation-of-expectation items of the physics world (DESIGN 4.2, issue 3 item 4).

One *group* per base state: a lawful base episode in which two discs (i, j) collide naturally
during the move t* - 1 -> t*, cleanly (only that pair collides in that move, neither touches a
wall, a real impact). From its initial state and its recorded ego forces (replayed open-loop)
six items are simulated, identical up to frame t* - 1; the first frame that can differ is t*:

- `lawful`: the base episode itself (it contains the collision at t*).
- `teleport`: disc k jumps, before the move t* - 1 -> t*, to a random free place at least
  `teleport_min` away; its velocity is kept, the rest is lawful.
- `vanish`: disc k is removed before the move t* - 1 -> t*: not drawn, no longer colliding.
- `pass_through`: the colliding pair (i, j) overlaps and passes through instead of colliding
  (the pair never collides again); its lawful pair is `lawful`, the same state with the collision.
- `acceleration`: disc k's velocity gets a kick of `kick * speed` in a random direction before
  the move t* - 1 -> t*, with no cause (kinetic energy is not conserved).
- `visual_control`: disc k takes a spare palette colour from frame t* on; the trajectory is the
  lawful one. Plausible; compared against teleport for selectivity (DESIGN 4.3). Of the spare
  palette colours, it takes the one that makes its frame change ||x_t* - x_{t*-1}|| closest to
  that of its group's teleport item, so a frame-difference detector is near chance on the
  selectivity comparison (a fixed colour left it at 0.65-0.9).

k is a disc other than i and j (and not the ego when possible), drawn at random per group.
Ideal surprisal: the world is deterministic given the state and the recorded forces, so the
ideal observer of the *trajectory* gives a lawful continuation probability 1 (surprisal 0) and a
violation probability 0 (surprisal +inf), written as the finite sentinel 1e9 so that JSON and
rank statistics stay well defined. The visual control has a lawful trajectory: surprisal 0.

Per item, `pixel_l2_change` is ||x_t* - x_{t*-1}||_2 over all pixels and channels (uint8 units),
what a frame-difference detector sees at t*; `pixel_l2_vs_lawful` is ||x_t* - lawful x_t*||_2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from data_gen.physics import EgoPolicy, PhysicsConfig, episode_arrays, initial_state, rollout
from data_gen.render import PALETTE, render
from pwm.data.format import shard_name, write_json_atomic

IDEAL_SURPRISAL_VIOLATION = 1e9
CONDITIONS = {
    "lawful": ("plausible", "lawful continuation; the pair (i, j) collides at t*"),
    "teleport": ("implausible", "disc k jumps to a random free place at t*"),
    "vanish": ("implausible", "disc k disappears at t* (not drawn, no longer collides)"),
    "pass_through": ("implausible", "discs i and j overlap and pass through instead of colliding"),
    "acceleration": ("implausible", "disc k's velocity changes at t* without cause"),
    "visual_control": ("plausible", "disc k changes colour at t*; its trajectory is lawful"),
}
NAMES = list(CONDITIONS)
COMPARISONS = [
    *({"name": c, "implausible": [c], "plausible": ["lawful"]} for c in NAMES[1:5]),
    {"name": "selectivity", "implausible": ["teleport"], "plausible": ["visual_control"]},
]
ITEMS_FILE = "items.json"
MAX_ROUNDS = 50  # batches of base episodes searched for clean collisions before giving up


@dataclass(frozen=True)
class ItemsConfig:
    """The item generator config; every field is a `pwm items physics` option.

    physics: the world (its `frames` is the item length).
    t_star_min, t_star_max: range of the event frame t* (the first frame that differs).
    teleport_min: smallest teleport jump, box units.
    kick: spontaneous velocity change, in units of `physics.speed`.
    groups_per_shard: groups (of len(CONDITIONS) items) per shard.
    """

    physics: PhysicsConfig = field(default_factory=lambda: PhysicsConfig(frames=48))
    t_star_min: int = 16
    t_star_max: int = 32
    teleport_min: float = 0.3
    kick: float = 3.0
    groups_per_shard: int = 16

    def validate(self) -> None:
        """Raise ValueError (one line, naming the option) if items cannot be generated."""
        self.physics.validate()
        n, frames = self.physics.num_objects, self.physics.frames
        if not 3 <= n < len(PALETTE):
            raise ValueError(f"--num-objects must be in [3, {len(PALETTE) - 1}] for items, got {n}")
        if not 1 <= self.t_star_min <= self.t_star_max <= frames - 1:
            raise ValueError(
                f"need 1 <= --t-star-min <= --t-star-max <= --frames - 1, got "
                f"{self.t_star_min}, {self.t_star_max}, {frames}"
            )
        if not 0 < self.teleport_min <= 0.5:
            raise ValueError(f"--teleport-min must be in (0, 0.5], got {self.teleport_min}")
        if self.kick <= 0 or self.physics.speed <= 0:
            raise ValueError("--kick and --speed must be > 0 for items")

    def meta(self) -> dict:
        return asdict(self)


def find_bases(icfg: ItemsConfig, rng: np.random.Generator, groups: int) -> dict:
    """Simulate lawful base episodes until `groups` of them have a clean collision in range."""
    cfg, found = icfg.physics, []
    while sum(len(f["t_star"]) for f in found) < groups:
        if len(found) == MAX_ROUNDS:
            raise ValueError(
                "too few clean collisions in the t* range; widen --t-star-min/--t-star-max, "
                "or raise --speed or --radius"
            )
        m = 2 * groups
        pos, vel = initial_state(cfg, rng, m)
        traj = rollout(pos, vel, cfg.radius, cfg.frames, EgoPolicy(cfg, rng, m))
        found.append(_select(icfg, rng, pos, vel, traj))
    return {k: np.concatenate([f[k] for f in found])[:groups] for k in found[0]}


def _select(icfg, rng, pos0, vel0, traj) -> dict:
    """Per base episode: the first clean collision move s -> s+1 with s+1 in the t* range."""
    cfg = icfg.physics
    col, wall, v = traj["collisions"], traj["wall_hits"], traj["velocities"]  # (m, T, ...)
    m, N = col.shape[0], cfg.num_objects
    kicked = v.copy()
    kicked[:, :, 0] += traj["actions"]
    dv = np.linalg.norm(v[:, 1:] - kicked[:, :-1], axis=-1)  # (m, T-1, N) velocity change
    one_pair = col.sum(axis=(2, 3)) == 2  # (m, T)
    involved = col.any(axis=3)  # (m, T, N)
    clean = one_pair & ~(wall & involved).any(axis=2)
    clean[:, :-1] &= (dv * involved[:, :-1]).max(axis=2) >= 0.5 * cfg.speed
    s_range = np.zeros(cfg.frames, dtype=bool)
    s_range[icfg.t_star_min - 1 : icfg.t_star_max] = True
    ok = clean & s_range
    s = np.argmax(ok, axis=1)  # (m,) first qualifying move
    e = np.arange(m)
    pair = np.argwhere(col[e, s])  # rows (episode-local index, i, j), i < j first per episode
    i, j = np.zeros(m, int), np.zeros(m, int)
    first = pair[pair[:, 1] < pair[:, 2]]
    i[first[:, 0]], j[first[:, 0]] = first[:, 1], first[:, 2]
    # k: random disc outside the pair, the ego only if nothing else is left
    score = rng.random((m, N)) + (np.arange(N) == 0)
    score[e, i] = score[e, j] = np.inf
    k = np.argmin(score, axis=1)
    target, valid = _teleport_targets(icfg, rng, traj["positions"][e, s], k)
    angle = rng.uniform(0, 2 * np.pi, m)
    kick = icfg.kick * cfg.speed * np.stack([np.cos(angle), np.sin(angle)], -1)  # (m, 2)
    keep = ok.any(axis=1) & valid
    return {
        "pos0": pos0[keep],
        "vel0": vel0[keep],
        "actions": traj["actions"][keep],
        "t_star": s[keep] + 1,
        "i": i[keep],
        "j": j[keep],
        "k": k[keep],
        "target": target[keep],
        "kick": kick[keep],
    }


def _teleport_targets(icfg, rng, pos, k, tries=256):
    """A free place (m, 2) for disc k, >= teleport_min from it, >= 3r from the others."""
    r, m = icfg.physics.radius, len(k)
    cand = rng.uniform(r, 1 - r, size=(m, tries, 2))  # (m, tries, 2)
    d = np.linalg.norm(cand[:, :, None] - pos[:, None], axis=-1)  # (m, tries, N)
    own = d[np.arange(m), :, k]  # (m, tries)
    d[np.arange(m), :, k] = np.inf
    good = (d.min(axis=2) >= 3 * r) & (own >= icfg.teleport_min)
    return cand[np.arange(m), np.argmax(good, axis=1)], good.any(axis=1)


def simulate_items(icfg: ItemsConfig, rng: np.random.Generator, n: int) -> dict:
    """n = groups * len(CONDITIONS) items (the writer's `simulate`): dataset arrays + metadata."""
    cfg, C = icfg.physics, len(NAMES)
    if n % C:
        raise ValueError(f"item shards hold whole groups: {n} is not a multiple of {C}")
    base = {key: np.repeat(a, C, axis=0) for key, a in find_bases(icfg, rng, n // C).items()}
    cond = np.tile(np.arange(C), n // C)  # (n,)
    N, T, e = cfg.num_objects, cfg.frames, np.arange(n)
    k, ts = base["k"], base["t_star"]
    is_ = {name: cond == NAMES.index(name) for name in NAMES}

    def hooks(t, pos, vel):
        now = ts - 1 == t  # (n,) the move t* - 1 -> t* starts
        acc = now & is_["acceleration"]
        vel[acc, k[acc]] += base["kick"][acc]
        tele = now & is_["teleport"]
        pos[tele, k[tele]] = base["target"][tele]
        alive = np.ones((n, N), dtype=bool)
        gone = is_["vanish"] & (t >= ts - 1)
        alive[gone, k[gone]] = False
        ghost = np.zeros((n, N, N), dtype=bool)
        through = is_["pass_through"] & (t >= ts - 1)
        ghost[through, base["i"][through], base["j"][through]] = True
        return {"alive": alive, "ghost": ghost}

    replay = lambda t, pos, vel: base["actions"][:, t]  # noqa: E731 (open-loop recorded forces)
    traj = rollout(base["pos0"], base["vel0"], cfg.radius, T, replay, hooks)
    after = np.arange(T)[None, :] >= ts[:, None]  # (n, T)
    colors = np.broadcast_to(PALETTE[:N], (n, T, N, 3)).copy()  # (n, T, N, 3)
    change = is_["visual_control"][:, None] & after
    new = matched_colours(cfg, traj, k, ts, is_["teleport"], is_["visual_control"])  # (G, 3)
    colors[change, k[:, None].repeat(T, 1)[change]] = new[change.nonzero()[0] // C]
    visible = np.ones((n, T, N), dtype=bool)
    gone = is_["vanish"][:, None] & after
    visible[gone, k[:, None].repeat(T, 1)[gone]] = False
    arrays = episode_arrays(cfg, traj, colors, visible)
    at = arrays["pixels"][e, ts].astype(np.float64).reshape(n, -1)  # (n, S*S*3) frame t*
    before = arrays["pixels"][e, ts - 1].astype(np.float64).reshape(n, -1)  # frame t* - 1
    lawful = (e // C) * C  # index of each item's group's lawful item
    arrays |= {
        "colors": colors,
        "visible": visible,
        "item_condition": cond.astype(np.int8),
        "item_t_star": ts.astype(np.int32),
        "item_object": np.where(
            is_["lawful"], -1, np.where(is_["pass_through"], base["i"], k)
        ).astype(np.int32),
        "item_partner": np.where(is_["pass_through"], base["j"], -1).astype(np.int32),
        "item_pixel_l2_change": np.linalg.norm(at - before, axis=1),
        "item_pixel_l2_vs_lawful": np.linalg.norm(at - at[lawful], axis=1),
    }
    return arrays


def matched_colours(cfg: PhysicsConfig, traj: dict, k, ts, tele, vis) -> np.ndarray:
    """Visual-control colour per group (G, 3): the spare palette colour whose frame change at t*
    is closest to that of the group's teleport item (module doc). tele, vis (n,) bool masks."""
    N, pos = cfg.num_objects, traj["positions"]  # (n, T, N, 2)
    e_t, e_v = np.nonzero(tele)[0], np.nonzero(vis)[0]  # (G,) each, in group order
    rows = np.arange(len(e_v))

    def frame(e, t, colors=PALETTE[:N]):
        return render(pos[e, t], cfg.radius, cfg.image_size, colors).astype(np.float64)

    def change(a, b):
        return np.linalg.norm((a - b).reshape(len(a), -1), axis=1)  # (G,)

    target = change(frame(e_t, ts[e_t]), frame(e_t, ts[e_t] - 1))  # (G,)
    before = frame(e_v, ts[e_v] - 1)  # (G, S, S, 3)
    cost = []
    for colour in PALETTE[N:]:
        colors = np.broadcast_to(PALETTE[:N], (len(e_v), N, 3)).copy()  # (G, N, 3)
        colors[rows, k[e_v]] = colour
        cost.append(np.abs(change(frame(e_v, ts[e_v], colors), before) - target))
    return PALETTE[N + np.argmin(np.stack(cost, 1), axis=1)]  # (G, 3)


def write_items_json(out: Path, shards: int) -> list[str]:
    """Gather the per-shard item arrays into `items.json` (the writer's `extra_files`)."""
    fields = ["condition", "t_star", "object", "partner", "pixel_l2_change", "pixel_l2_vs_lawful"]
    cols = {
        f: np.concatenate(
            [
                np.load(Path(out) / shard_name(s) / f"item_{f}.npy", allow_pickle=False)
                for s in range(shards)
            ]
        )
        for f in fields
    }
    items = []
    for e in range(len(cols["condition"])):
        name = NAMES[cols["condition"][e]]
        label = CONDITIONS[name][0]
        items.append(
            {
                "item_id": e,
                "episode": e,
                "group_id": e // len(NAMES),
                "condition": name,
                "label": label,
                "t_star": int(cols["t_star"][e]),
                "ideal_surprisal": IDEAL_SURPRISAL_VIOLATION if label == "implausible" else 0.0,
                "object": int(cols["object"][e]),
                "partner": int(cols["partner"][e]),
                "pixel_l2_change": float(cols["pixel_l2_change"][e]),
                "pixel_l2_vs_lawful": float(cols["pixel_l2_vs_lawful"][e]),
            }
        )
    doc = {
        "world": "physics",
        "conditions": {c: {"label": lab, "doc": doc} for c, (lab, doc) in CONDITIONS.items()},
        "comparisons": COMPARISONS,
        "ideal_surprisal_violation": IDEAL_SURPRISAL_VIOLATION,
        "items": items,
    }
    write_json_atomic(Path(out) / ITEMS_FILE, doc)
    return [ITEMS_FILE]
