"""Counterfactual Polis pairs for the consequence probe (DESIGN 4.6): "what if I defect now?".

One pair = two episodes of one scenario that differ only in the ego's (agent 0's) action at one
exchange: it cooperates in the first, defects in the second. Construction, per shard:

- Natural runs (`world.frames` long, the length of the training episodes by default) are
  searched for *moments*: rounds where the ego meets a partner in the exchange at frame t, with
  `before` frames before t and `after` from t on inside the run, and where a defection by the
  ego would be unprovoked (the ego was not provoked by the partner and neither distrusts nor
  holds a grudge against it, read from the natural run's event label): the case in which the
  simulator's laws make the partner's trust collapse. One moment per natural episode, drawn
  uniformly among its moments, so pairs come from distinct scenarios.
- Each moment's scenario is replayed twice (`polis.run` on the same `Scenario`, hence the same
  RNG stream) with the ego's executed action at that round forced to C and to D. The ego's moves
  are replayed from the natural run (`Script.ego_move`), so the two episodes' actions differ
  only in the cd column: at t - 1 (the intervention) and at the ego's later exchanges, where its
  behaviour policy answers what the partner does. Every other agent acts by its own policy on
  the same uniforms, so their actions agree wherever the two worlds still agree. The meeting
  at t happens in both replays by construction: nothing differs before the round's actions.
- Both replays are cropped to [t - before, t + after), so every pair has t_event = before; one
  of the two replays is the natural run itself (bit for bit).

With the default react_delay = 2 nobody moves differently before frame t + 2 round_len + 1:
the partner's distance from the ego diverges from the third round of a 30-frame (5-round) probe
horizon on. The default crop (60 frames before t, 36 from it on, in 241-frame search runs as
long as the social-law study's training episodes) holds a round-level model's context.

Episodes are pair-major (cooperate, defect, cooperate, ...). Besides the world's ground truth
(polis.frame_arrays, dispositions, tremble, hobbesian), `state` and `pixels`, each episode
carries `pair_*` fields (partner, t_event, ego action, natural ego action, crop start), which
`write_consequence_json` gathers into the checksummed `consequence.json` the probe reads:
{"pairs": [{"cooperate", "defect", "t_event", "partner", "natural"}, ...], ...}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_gen import agents, polis
from data_gen.agents import C, D
from data_gen.polis_config import PolisConfig
from pwm.data.format import DatasetError, shard_name, write_json_atomic

CONSEQUENCE_FILE = "consequence.json"  # the name pwm/probes/consequence.py reads
_FIELDS = {"partner": np.int8, "t_event": np.int32, "ego": np.int8, "natural": np.int8,
           "frame0": np.int32}  # fmt: skip


@dataclass(frozen=True)
class ConsequenceConfig:
    """`pwm items polis --consequence` config: the world searched (its `frames` = search run
    length), the crop (`before` frames before the ego's exchange, `after` from it on) and the
    search batch size."""

    world: PolisConfig = field(default_factory=lambda: PolisConfig(frames=241))
    before: int = 60  # 10 rounds: the context of a model that steps one round at a time
    after: int = 36  # a 30-frame (5-round) probe horizon and a margin
    search_batch: int = 64
    episodes_per_shard: int = 64  # 32 pairs

    def __post_init__(self):
        w = self.world
        if self.before < 1 or self.after < 1:
            raise ValueError(f"--before and --after must be >= 1, got {self.before}, {self.after}")
        if not np.any(_fits(w, self.before, self.after)):
            raise ValueError(
                f"--search-frames {w.frames} leaves no exchange frame (a multiple of "
                f"--round-len {w.round_len}) with --before {self.before} frames before it and "
                f"--after {self.after} from it on"
            )


def _frames(world: PolisConfig) -> np.ndarray:
    """(R,) the exchange frame of every round: round r happens at frame (r + 1) round_len."""
    return np.arange(1, polis.rounds(world) + 1) * world.round_len


def _fits(world: PolisConfig, before: int, after: int) -> np.ndarray:
    """(R,) whether round r's exchange frame has room for the crop around it."""
    t = _frames(world)
    return (t - before >= 0) & (t + after <= world.frames)


def moments(cfg: ConsequenceConfig, truth: dict) -> np.ndarray:
    """(E, R) bool: the ego meets a partner at round r of a natural run, the crop fits, and a
    defection by the ego there would be unprovoked (its natural action is labelled a plain
    cooperation or an unprovoked defection, never forgiveness, retaliation or punishment)."""
    frames = _frames(cfg.world)
    event = truth["event"][:, frames, 0]  # (E, R)
    met = truth["partner"][:, frames, 0] >= 0
    unprovoked = np.isin(event, (agents.COOPERATION, agents.UNPROVOKED))
    return met & unprovoked & _fits(cfg.world, cfg.before, cfg.after)[None]


def simulate_consequence(cfg: ConsequenceConfig, rng: np.random.Generator, episodes: int) -> dict:
    """`generate_dataset`'s simulate: `episodes` (even) episodes, pairs (cooperate, defect)."""
    if episodes % 2:
        raise DatasetError(f"a counterfactual set holds pairs: {episodes} episodes is odd")
    w, want = cfg.world, episodes // 2
    scenarios, natural, rounds = [], [], []
    have = 0
    for _ in range(100):
        sc = polis.draw_scenario(w, rng, cfg.search_batch)
        truth = polis.run(w, sc)
        ok = moments(cfg, truth)  # (B, R)
        pick = np.floor(rng.random(len(ok)) * ok.sum(1))  # (B,) which moment of each episode
        keep = np.flatnonzero(ok.any(1))[: want - have]
        r = (np.cumsum(ok[keep], 1) > pick[keep, None]).argmax(1)  # (P,) the picked round
        scenarios.append(sc.take(keep))
        natural.append({k: truth[k][keep] for k in ("actions", "partner", "executed")})
        rounds.append(r)
        have += len(r)
        if have == want:
            break
    else:
        raise DatasetError(
            "Polis consequence: the natural runs did not produce enough ego exchanges; "
            "raise --search-frames or lower --before / --after"
        )
    nat = {k: np.concatenate([n[k] for n in natural]) for k in natural[0]}
    r = np.concatenate(rounds)  # (P,)
    rows = np.arange(want)
    t = (r + 1) * w.round_len  # (P,) the exchange frame
    script = polis.Script.natural(w, episodes)
    script.force[r, 2 * rows, 0] = C
    script.force[r, 2 * rows + 1, 0] = D
    script.ego_move = np.repeat(nat["actions"][:, :, :2], 2, axis=0).astype(np.float32)
    truth = polis.run(w, polis.Scenario.cat(scenarios).take(np.repeat(rows, 2)), script)
    fields = {
        "partner": np.repeat(nat["partner"][rows, t, 0], 2),
        "t_event": np.full(episodes, cfg.before),
        "ego": np.tile([C, D], want),
        "natural": np.repeat(nat["executed"][rows, t, 0], 2),
        "frame0": np.repeat(t - cfg.before, 2),
    }
    return _crop_and_render(cfg, truth, fields)


def _crop_and_render(cfg: ConsequenceConfig, truth: dict, fields: dict) -> dict:
    """Crop every episode to [frame0, frame0 + before + after), render, add the pair fields."""
    span, n = cfg.before + cfg.after, cfg.world.n_agents
    window = fields["frame0"][:, None] + np.arange(span)  # (E, T') frames kept
    rows = np.arange(len(window))[:, None]
    arrays = {k: truth[k][rows, window] for k in polis.frame_arrays(n)}
    arrays |= {k: truth[k] for k in ("dispositions", "tremble", "hobbesian")}
    arrays["state"] = polis.observe(arrays, cfg.world.state_links)
    arrays["pixels"] = polis.pixels(cfg.world, arrays)  # (E, T', S, S, 3)
    polis.add_crops(cfg.world, arrays)
    for k, dtype in _FIELDS.items():
        arrays[f"pair_{k}"] = np.asarray(fields[k], dtype=dtype)
    return arrays


def write_consequence_json(out: Path, cfg: ConsequenceConfig) -> list[str]:
    """`extra_files` callback: gather the pair fields of every shard into consequence.json."""
    out = Path(out)
    cols = {k: [] for k in _FIELDS}
    i = 0
    while (out / shard_name(i)).is_dir():
        for k in cols:
            cols[k].append(np.load(out / shard_name(i) / f"pair_{k}.npy", allow_pickle=False))
        i += 1
    cols = {k: np.concatenate(v).tolist() for k, v in cols.items()}
    pairs = [
        {"cooperate": e, "defect": e + 1, "t_event": cols["t_event"][e],
         "partner": cols["partner"][e], "natural": "C" if cols["natural"][e] == C else "D"}
        for e in range(0, len(cols["ego"]), 2)
    ]  # fmt: skip
    doc = {
        "world": "polis",
        "ego": 0,
        "doc": "Each pair: one scenario, the ego (agent 0) cooperates (episode `cooperate`) or "
        "defects (`defect`) on `partner` in the exchange at frame t_event (actions[t_event - 1, "
        "2] = +1 / -1), unprovoked; frames before t_event are identical; the ego's moves are "
        "the natural run's; `natural` is what the ego did in the natural run.",
        "frames_after": cfg.after,
        "pairs": pairs,
    }
    write_json_atomic(out / CONSEQUENCE_FILE, doc)
    return [CONSEQUENCE_FILE]
