"""The empirical game of Polis: what each disposition earns against each other, by simulation.

Polis has no payoff inside its dynamics; the world's scoring rule is the prisoner's-dilemma table
of PolisConfig (T, R, P, S), applied to every executed exchange. This module measures, with
Polis's own movement, pairing, witnesses and trust, the two things the evolutionary analysis
(data_gen/evolution.py) needs:

- `measure_game`: the 6 x 6 matrix A[i, j] = the expected payoff *per exchange round* of an
  agent of type i from its exchanges with one agent of type j, times (N - 1). With it the
  fitness of type i in a society of mix x is f_i(x) = sum_j x_j A[i, j] (its payoff per round
  when its N - 1 neighbours are drawn from x), the linear pairwise game that replicator and
  Moran dynamics take. It is measured in episodes whose agents are drawn uniformly from the six
  types, so every ordered pair of types is sampled in every context, and averaged over all
  ordered pairs of agents (a, b), a != b, with a and b not the ego.
  Why per round and not per exchange: Polis's social forces decide who meets whom (agents
  approach those they trust and avoid those they distrust), so ostracism shows as fewer
  exchanges; a round without a partner earns 0. The per-exchange means are kept too
  (`GameEstimate.per_exchange`).
  What it leaves out: third parties (witnesses, reputation) make a type's earnings against j
  depend on the rest of the society; the matrix averages that context over a uniform society.
  `measure_invasion` measures invasion fitness directly in a given society, without the
  linearisation, and the report compares the two.
- `measure_invasion`: the invasion fitness of a single mutant of each type in a resident society
  (e.g. `civilized`): per episode, the mutant's payoff per round minus the mean payoff per round
  of the residents in the same episode; common random numbers across mutants (the same episodes,
  only agent 1's type changed).

The ego (agent 0) plays its disposition like everyone else (`ego_explore` = 0; it never
trembles, as in every Polis episode) and is left out of the statistics, as focal and partner.

Confidence intervals are 95% normal intervals of ratio estimators clustered by episode (the
exchanges of one episode are not independent): for a contrast sum_c w_c A_c the variance is
E / (E - 1) sum_e (sum_c w_c (S_ec - A_c N_ec) / N_c)^2, with S and N the per-episode sums and
counts of cell c (the delta method).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from data_gen import polis
from data_gen.agents import DISPOSITIONS
from data_gen.polis_config import PolisConfig

K = len(DISPOSITIONS)
Z95 = 1.959963984540054
UNIFORM = (1.0 / K,) * K


def payoff_table(config: PolisConfig) -> np.ndarray:
    """(2, 2) payoff to me, indexed [my executed action, partner's] with D = 0, C = 1."""
    t, r, p, s = config.payoffs
    return np.array([[p, t], [s, r]])


def earnings(config: PolisConfig, truth: dict[str, np.ndarray]) -> np.ndarray:
    """(B, N, N) float64: earnings[e, a, b] = agent a's total payoff from its exchanges with b."""
    ex, partner = truth["executed"], truth["partner"]  # (B, T, N) each
    b, _, n = ex.shape
    paired = partner >= 0
    theirs = np.take_along_axis(ex, np.where(paired, partner, 0).astype(np.intp), axis=2)
    pay = payoff_table(config)[np.clip(ex, 0, 1), np.clip(theirs, 0, 1)]  # (B, T, N)
    cell = (np.arange(b)[:, None, None] * n + np.arange(n)) * n + partner  # (B, T, N)
    flat = np.bincount(cell[paired], weights=pay[paired], minlength=b * n * n)
    return flat.reshape(b, n, n)


@dataclass
class RatioEstimate:
    """Per-episode sums and counts of K x K cells; the estimate is sum S / sum N per cell."""

    sums: np.ndarray  # (E, K, K)
    counts: np.ndarray  # (E, K, K)

    @property
    def mean(self) -> np.ndarray:  # (K, K)
        return self.sums.sum(0) / np.maximum(self.counts.sum(0), 1)

    def contrast(self, weights: np.ndarray) -> tuple[float, float]:
        """(value, 95% half-width) of sum_c weights[c] * mean[c], clustered by episode."""
        e = len(self.sums)
        mean, total = self.mean, np.maximum(self.counts.sum(0), 1)
        resid = ((self.sums - mean * self.counts) * (weights / total)).sum((1, 2))  # (E,)
        return float((weights * mean).sum()), float(Z95 * np.sqrt(e / (e - 1) * (resid**2).sum()))

    def bootstrap(self, rng: np.random.Generator, reps: int) -> np.ndarray:
        """(reps, K, K) means of episodes resampled with replacement (multinomial weights)."""
        e = len(self.sums)
        w = rng.multinomial(e, np.full(e, 1.0 / e), size=reps).astype(np.float64)  # (R, E)
        s, c = w @ self.sums.reshape(e, -1), w @ self.counts.reshape(e, -1)  # (R, K * K)
        return (s / np.maximum(c, 1)).reshape(reps, K, K)

    @property
    def halfwidth(self) -> np.ndarray:  # (K, K) 95% half-width of each cell
        out = np.zeros((K, K))
        for i in range(K):
            for j in range(K):
                w = np.zeros((K, K))
                w[i, j] = 1.0
                out[i, j] = self.contrast(w)[1]
        return out


@dataclass
class GameEstimate:
    """The empirical game: per-round payoffs (the game) and per-exchange payoffs (a reading)."""

    per_round: RatioEstimate
    per_exchange: RatioEstimate
    episodes: int


def game_world(base: PolisConfig) -> PolisConfig:
    """The world a game is measured in: `base` with a uniform mix, no rendering, no exploring."""
    kw = {**base.__dict__, "population": "custom", "dispositions": UNIFORM}
    return PolisConfig(**{**kw, "image_size": 0, "crop_size": 0, "ego_explore": 0.0})


def _cells(types_a: np.ndarray, types_b: np.ndarray, values: np.ndarray, mask: np.ndarray):
    """Per-episode sums and counts (E, K, K) of `values` (E, M) at cells (types_a, types_b)."""
    e = len(values)
    idx = (np.arange(e)[:, None] * K + types_a) * K + types_b  # (E, M)
    sums = np.bincount(idx[mask], weights=values[mask], minlength=e * K * K)
    counts = np.bincount(idx[mask], minlength=e * K * K).astype(np.float64)
    return sums.reshape(e, K, K), counts.reshape(e, K, K)


def measure_game(
    base: PolisConfig,
    rng: np.random.Generator,
    episodes: int,
    batch: int = 512,
    progress: Callable[[int], None] | None = None,
) -> GameEstimate:
    """Simulate `episodes` uniform-mix episodes of `base`'s world in batches of `batch` (the
    random draws depend on both: same seed and batch, same bytes); see the module docstring."""
    config = game_world(base)
    n, rounds = config.n_agents, polis.rounds(config)
    a, b = np.nonzero(~np.eye(n, dtype=bool) & (np.arange(n) > 0)[:, None] & (np.arange(n) > 0))
    parts = {"round_s": [], "round_n": [], "ex_s": [], "ex_n": []}
    done = 0
    while done < episodes:
        size = min(batch, episodes - done)
        sc = polis.draw_scenario(config, rng, size)
        truth = polis.run(config, sc)
        earn = earnings(config, truth)  # (B, N, N)
        meets = _meetings(truth["partner"])  # (B, N, N)
        d = sc.dispositions.astype(np.intp)
        ta, tb = d[:, a], d[:, b]  # (B, M) types of the ordered pairs
        per_round = earn[:, a, b] * ((n - 1) / rounds)  # (B, M)
        every = np.ones_like(per_round, bool)
        s, c = _cells(ta, tb, per_round, every)
        parts["round_s"].append(s)
        parts["round_n"].append(c)
        parts["ex_s"].append(_cells(ta, tb, earn[:, a, b], every)[0])  # payoff sums
        parts["ex_n"].append(_cells(ta, tb, meets[:, a, b], every)[0])  # exchange counts
        done += size
        if progress:
            progress(size)
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return GameEstimate(
        RatioEstimate(cat["round_s"], cat["round_n"]),
        RatioEstimate(cat["ex_s"], cat["ex_n"]),
        episodes,
    )


def _meetings(partner: np.ndarray) -> np.ndarray:
    """(B, N, N) number of exchanges between a and b, from partner (B, T, N)."""
    b, _, n = partner.shape
    paired = partner >= 0
    cell = (np.arange(b)[:, None, None] * n + np.arange(n)) * n + partner
    return np.bincount(cell[paired], minlength=b * n * n).reshape(b, n, n).astype(np.float64)


@dataclass
class Invasion:
    """Invasion fitness of one mutant of each type asked for (and of a resident-drawn control)."""

    fitness: np.ndarray  # (M + 1,) mutant payoff per round minus residents' (last: control)
    halfwidth: np.ndarray  # (M + 1,) 95% half-width
    mutant: np.ndarray  # (M + 1,) mutant payoff per round
    resident: np.ndarray  # (M + 1,) residents' mean payoff per round
    episodes: int


def measure_invasion(
    base: PolisConfig,
    resident: tuple[float, ...],
    rng: np.random.Generator,
    episodes: int,
    mutants: tuple[int, ...] = tuple(range(K)),
    batch: int = 512,
    progress: Callable[[int], None] | None = None,
) -> Invasion:
    """One mutant (agent 1) of each type in `mutants`, and a control drawn from the residents
    (the last entry), in episodes whose other agents are drawn from `resident` weights; see the
    module docstring."""
    config = PolisConfig(**{**game_world(base).__dict__, "dispositions": tuple(resident)})
    rounds = polis.rounds(config)
    diffs, mut, res = [], [], []
    done = 0
    while done < episodes:
        size = min(batch, episodes - done)
        sc = polis.draw_scenario(config, rng, size)
        own = sc.dispositions[:, 1].copy()
        d_b, m_b, r_b = [], [], []
        for kind in (*mutants, None):
            sc.dispositions[:, 1] = own if kind is None else kind
            fit = earnings(config, polis.run(config, sc)).sum(2) / rounds  # (B, N)
            m_b.append(fit[:, 1])
            r_b.append(fit[:, 2:].mean(1))
            d_b.append(fit[:, 1] - fit[:, 2:].mean(1))
            if progress:
                progress(size)
        diffs.append(np.stack(d_b, 1))
        mut.append(np.stack(m_b, 1))
        res.append(np.stack(r_b, 1))
        done += size
    d = np.concatenate(diffs)  # (E, M + 1)
    half = Z95 * d.std(0, ddof=1) / np.sqrt(len(d))
    return Invasion(
        d.mean(0), half, np.concatenate(mut).mean(0), np.concatenate(res).mean(0), episodes
    )
