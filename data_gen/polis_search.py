"""Find the histories Polis items are built on, in natural (unscripted) runs of the world.

Items are never built on forced meetings: every item starts from a pair (A, B) that met in a
natural run, and its event is A's (or B's) action at a meeting that happened there. Patterns,
all with A, B != 0 (the ego's actions are exogenous) and a crop window that fits the run:

- `bases`: A (reciprocator or grim, not noisy) and B (reciprocator or grim, so that B's lawful
  answer to a betrayal is to retaliate) cooperated mutually at each of their first K meetings,
  the K-th at round r, and
  met again at rounds r+1 (t*, both cooperated) and r+2 (t2). Item variants replay this run with
  scripted actions from round r on, so with react_delay >= 2 their meetings at t* and t2 are
  those of the natural run (checked again after replaying).
- `controls`, natural events on their own histories (K = number of earlier A-B meetings):
  `habitual`: A defected at every earlier meeting with B (at least one) and defects again;
  `stranger`: A and B meet for the first time and A defects;
  `noisy`: A is a noisy agent, trembled into a defection on B at an earlier meeting, and
  trembles into a defection again (its event is an unprovoked defection);
  `norm`: B never defected on A, but since their last meeting A witnessed B defect unprovoked on
  a third agent; A now defects on B, a justified punishment.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from data_gen import agents
from data_gen.agents import C, D
from data_gen.polis_config import PolisConfig

CONTROLS = ("habitual", "stranger", "noisy", "norm")


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
    return [(a, b) for a in range(1, n) for b in range(1, n) if a != b]


def bases(config: PolisConfig, truth: dict, K: int, before: int, after: int) -> list[Found]:
    """M-group bases with exactly K mutual cooperations before t* (see module docstring)."""
    rd = per_round(truth, config.round_len)
    disp, tremble = truth["dispositions"], truth["tremble"]
    e_n, r_n, n = rd["partner"].shape
    r = np.arange(r_n - 2)
    ok_t = _window(config, r + 2, before, after) & _window(config, r + 1, before, after)
    out = []
    for a, b in _pairs(n):
        fit = (
            np.isin(disp[:, a], (agents.RECIPROCATOR, agents.GRIM))
            & (tremble[:, a] <= config.tremble)
            & np.isin(disp[:, b], (agents.RECIPROCATOR, agents.GRIM))
        )
        met = rd["partner"][:, :, a] == b  # (E, R)
        mutual = met & (rd["executed"][:, :, a] == C) & (rd["executed"][:, :, b] == C)
        count = np.cumsum(met, 1)
        spoilt = np.cumsum(met & ~mutual, 1)
        hit = (
            met[:, :-2]
            & met[:, 1:-1]
            & met[:, 2:]
            & (count[:, :-2] == K)
            & (spoilt[:, :-2] == 0)
            & mutual[:, 1:-1]
            & ok_t
            & fit[:, None]
        )  # fmt: skip  (E, R - 2)
        for e, rr in zip(*np.nonzero(hit), strict=True):
            out.append(Found(int(e), a, b, int(rr) + 1, K))
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
