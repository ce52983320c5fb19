"""Find the histories Polis items are built on, in natural (unscripted) runs of the world.

Items are never built on forced meetings: every item starts from a pair (A, B) that met in a
natural run, and its event is A's action at a meeting that happened there. B is always the ego
(agent 0): its actions are the model's recorded action inputs, so at the event B's action is
given to an action-conditioned model (and to the observers) in every item alike, and only A's
action can surprise (DESIGN 4.2, "M1 must not be decided by B"). A is any other agent. Patterns,
each with a crop window that fits the run:

- `bases`: A (reciprocator or grim, not noisy, so that its lawful answer to a provocation is to
  retaliate) and the ego met for the first time at round r - K and then at every round up to
  r - 1, cooperating mutually each time (K consecutive rounds of mutual cooperation, the pair's
  whole history), and met again at rounds r (t*, both cooperated) and r + 1 (t2). Item variants
  replay this run with scripted actions from round r - 1 on, so with react_delay >= 2 their
  meetings at t* and t2 are those of the natural run (checked again after replaying).
- `controls`, natural events on their own histories (K = number of earlier A-ego meetings):
  `habitual`: A defected on the ego at every earlier meeting (at least one) and defects again;
  `stranger`: A and the ego meet for the first time and A defects;
  `noisy`: A is a noisy agent, trembled into a defection on the ego at an earlier meeting, and
  trembles into a defection again (its event is an unprovoked defection);
  `norm` (law `justice` only: under `reciprocity` trust does not enter choices, so nobody
  punishes a third party's defection): the ego never defected on A, but since their last
  meeting A witnessed the ego defect unprovoked on a third agent; A now defects on the ego, a
  justified punishment.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from data_gen import agents
from data_gen.agents import C, D
from data_gen.polis_config import PolisConfig

CONTROLS = ("habitual", "stranger", "noisy", "norm")
EGO = 0  # B, the agent whose actions the model is given


def controls_of(law: str) -> tuple[str, ...]:
    """The controls a world with this law produces naturally (no `norm` under reciprocity)."""
    return CONTROLS if law == "justice" else CONTROLS[:3]


class Found(NamedTuple):
    """A history found in episode `episode`: agents a, b; event at round `round`; K meetings."""

    episode: int
    a: int
    b: int
    round: int
    K: int


def per_round(truth: dict[str, np.ndarray], round_len: int) -> dict[str, np.ndarray]:
    """Arrays (E, R, ...) at the exchange frames: round r happens at frame (r + 1) round_len."""
    frames = np.arange(round_len, truth["partner"].shape[1], round_len)
    keys = ("partner", "intended", "executed", "event", "witness")
    return {k: truth[k][:, frames] for k in keys}


def _window(config: PolisConfig, rounds: np.ndarray, before: int, after: int) -> np.ndarray:
    """Whether the crop [t - before, t + after) around round r's frame fits in the run."""
    t = (rounds + 1) * config.round_len
    return (t - before >= 0) & (t + after <= config.frames)


def _pairs(n: int):
    """(A, B) candidates: every other agent with the ego as B."""
    return [(a, EGO) for a in range(1, n)]


def bases(config: PolisConfig, truth: dict, K: int, before: int, after: int) -> list[Found]:
    """M-group bases with exactly K rounds of mutual cooperation before t* (module docstring)."""
    rd = per_round(truth, config.round_len)
    disp, tremble = truth["dispositions"], truth["tremble"]
    e_n, r_n, n = rd["partner"].shape
    r = np.arange(K, r_n - 1)  # candidate event rounds (t*): r - K >= 0, r + 1 < R
    ok_t = _window(config, r + 1, before, after) & _window(config, r, before, after)
    out = []
    for a, b in _pairs(n):
        fit = np.isin(disp[:, a], (agents.RECIPROCATOR, agents.GRIM)) & (
            tremble[:, a] <= config.tremble
        )
        met = rd["partner"][:, :, a] == b  # (E, R)
        mutual = met & (rd["executed"][:, :, a] == C) & (rd["executed"][:, :, b] == C)
        before_count = np.cumsum(met, 1) - met  # (E, R) earlier meetings
        run = np.ones((e_n, len(r)), bool)  # mutual at every round r - K .. r (t* included)
        for k in range(K + 1):
            run &= mutual[:, r - k]
        hit = run & (before_count[:, r - K] == 0) & met[:, r + 1] & ok_t & fit[:, None]
        for e, i in zip(*np.nonzero(hit), strict=True):
            out.append(Found(int(e), a, b, int(r[i]), K))
    return out


def controls(config: PolisConfig, truth: dict, kind: str, before: int, after: int) -> list[Found]:
    """Natural control events of one kind (see module docstring)."""
    rd = per_round(truth, config.round_len)
    e_n, r_n, n = rd["partner"].shape
    ok_t = _window(config, np.arange(r_n), before, after)
    noisy = truth["tremble"] > config.tremble
    out = []
    for a, b in _pairs(n):
        met = rd["partner"][:, :, a] == b  # (E, R)
        act_a, act_b = rd["executed"][:, :, a], rd["executed"][:, :, b]
        before_count = np.cumsum(met, 1) - met  # earlier meetings
        a_d = met & (act_a == D)
        tremble_d = a_d & (rd["intended"][:, :, a] == C)
        if kind == "habitual":
            hit = a_d & (before_count >= 1) & (np.cumsum(met & ~a_d, 1) == 0)
        elif kind == "stranger":
            hit = a_d & (before_count == 0)
        elif kind == "noisy":
            earlier = (np.cumsum(tremble_d, 1) - tremble_d) > 0
            unprovoked = rd["event"][:, :, a] == agents.UNPROVOKED
            hit = tremble_d & earlier & unprovoked & noisy[:, a, None]
        elif kind == "norm":
            seen = rd["witness"][:, :, a, b] & (rd["event"][:, :, b] == agents.UNPROVOKED)
            seen &= rd["partner"][:, :, b] != a
            # witnessed since the last A-B meeting: count sightings in each inter-meeting span
            span = np.cumsum(met, 1) - met
            seen_since = np.zeros_like(seen)
            for e, rr in zip(*np.nonzero(seen), strict=True):
                seen_since[e, rr:] |= span[e, rr:] == span[e, rr]
            b_clean = np.cumsum(met & (act_b == D), 1) - (met & (act_b == D)) == 0
            hit = a_d & seen_since & b_clean & (rd["event"][:, :, a] == agents.JUSTIFIED)
        else:
            raise ValueError(f"unknown control {kind!r}; known: {', '.join(CONTROLS)}")
        hit &= ok_t
        for e, rr in zip(*np.nonzero(hit), strict=True):
            out.append(Found(int(e), a, b, int(rr), int(before_count[e, rr])))
    return out
