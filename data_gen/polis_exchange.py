"""One Polis exchange round: decisions, trembles, and the trust, memory and reputation laws.

`Social` is the hidden social state of a batch of episodes; `exchange` plays one round for
every pair found by `polis.pair` and updates `Social` in place. The laws (DESIGN 3.3):

- The partner's trust builds slowly after a cooperation, T += build (1 - T), and collapses after
  an unjustified defection, T *= 1 - collapse. A defection is justified for its victim when it
  is a retaliation or a punishment (agents.classify), so lawful defections do not spiral.
- Grim agents keep a grudge against whoever defected on them unjustifiedly: their trust in that
  agent never rebuilds.
- Witnesses update their trust in each player the same way with witness_build and
  witness_collapse, except that they never lower it for a retaliation (the pair's last exchange
  is public) or for a defection on a partner they themselves distrust (the standing rule:
  punishing an agent of bad standing costs no reputation).
- Memory: `last[i, j]` is i's last action toward j (none, C, unjustified D, justified D).
- The law (`config.law`, polis_config.py) decides what moves a choice. `justice`: "provoked"
  means the partner's last action toward me was an *unjustified* D, and a partner I distrust is
  punished (the standing rule, also applied by witnesses). `reciprocity`: "provoked" means the
  partner's last action toward me was any D; trust does not enter choices ("distrusted" is
  never set) and witnesses excuse retaliations only.

Scripts (item variants) can force an executed action (the probability recorded is still the
policy's probability of that action, so an item's surprisal is exact) or make an agent update
on its partner's action as if it had been a cooperation (a violation of the trust law).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_gen import agents
from data_gen.agents import C, D
from data_gen.polis_config import PolisConfig

NONE, LAST_C, LAST_DU, LAST_DJ = 0, 1, 2, 3  # codes of `last`


@dataclass
class Social:
    """Hidden social state of B episodes with N agents."""

    trust: np.ndarray  # (B, N, N) float64, trust[i, j] = i's trust in j
    last: np.ndarray  # (B, N, N) int8, last[i, j] = i's last action toward j (NONE, LAST_*)
    grudge: np.ndarray  # (B, N, N) bool, grudge[i, j]: grim i never forgives j

    @staticmethod
    def start(config: PolisConfig, batch: int, n: int) -> Social:
        trust = np.full((batch, n, n), config.trust_prior)
        trust[:, np.arange(n), np.arange(n)] = 1.0
        return Social(trust, np.zeros((batch, n, n), np.int8), np.zeros((batch, n, n), bool))


def exchange(config: PolisConfig, soc: Social, sc, r: int, pos, partner, force, erase) -> dict:
    """Play round `r` of scenario `sc` for the pairs in `partner` (B, N); update `soc`.

    `force` (B, N) int8 forces executed actions (-1: natural), `erase` (B, N) bool makes an
    agent treat its partner's action as a cooperation. Returns per-agent records (B, N) and the
    witness matrix (B, N, N), witness[k, i] = k witnessed i's exchange.
    """
    b, n = partner.shape
    bi, ii = np.arange(b)[:, None], np.arange(n)[None, :]
    paired = partner >= 0  # (B, N)
    j = np.where(paired, partner, ii)  # (B, N); self when unpaired (masked below)
    t_ij = soc.trust[bi, ii, j]  # (B, N): my trust in my partner
    mid = (pos + pos[bi, j]) / 2  # (B, N, 2) midpoint of my exchange
    off = pos[:, :, None] - mid[:, None]  # (B, K, N, 2): from k to i's exchange
    # (B, K, N): the bits of np.linalg.norm(off, axis=-1), without a reduction over an axis of 2
    dist = np.sqrt(off[..., 0] ** 2 + off[..., 1] ** 2)
    k = np.arange(n)[None, :, None]
    witness = (
        (dist < config.witness_radius) & paired[:, None] & (k != ii[:, None]) & (k != j[:, None])
    )  # (B, K, N)
    justice = config.law == "justice"
    last_ji = soc.last[bi, j, ii]  # (B, N): my partner's last action toward me
    # the defections a reciprocator answers: unjustified ones (justice), or any (reciprocity)
    answered = (LAST_DU,) if justice else (LAST_DU, LAST_DJ)
    o = agents.Obs(
        provoked=paired & np.isin(last_ji, answered),
        distrusted=paired & (t_ij < config.distrust) & justice,
        grudge=paired & soc.grudge[bi, ii, j],
        witnessed=witness.any(1),
        generosity=config.generosity,
    )
    p = agents.cooperate_prob(sc.dispositions, o)  # (B, N) P(intend C)
    u = sc.u_intend[r]
    intended = (u < p).astype(np.int8)
    explore = sc.u_explore[r] < config.ego_explore  # (B,)
    intended[:, 0] = np.where(explore, u[:, 0] < 0.5, intended[:, 0])
    tremble = sc.tremble.copy()
    tremble[:, 0] = 0.0  # the ego's action is exogenous: executed as chosen
    executed = np.where(sc.u_tremble[r] < tremble, 1 - intended, intended)
    executed = np.where((force >= 0) & paired, force, executed).astype(np.int8)
    prob = agents.executed_prob(p, tremble, executed)
    prob[:, 0] = (1 - config.ego_explore) * prob[:, 0] + config.ego_explore * 0.5
    event = agents.classify(executed, o)

    # Laws. Every judgement reads the trust from before this round.
    lawful = (executed == D) & np.isin(event, (agents.RETALIATION, agents.JUSTIFIED))
    a_j, lawful_j = executed[bi, j], lawful[bi, j]  # my partner's action, and its justification
    seen_c = paired & ((a_j == C) | erase)
    hurt = paired & (a_j == D) & ~lawful_j & ~erase
    t_new = np.where(seen_c & ~o.grudge, t_ij + config.build * (1 - t_ij), t_ij)
    t_new = np.where(hurt, t_ij * (1 - config.collapse), t_new)

    t_kj = np.take_along_axis(soc.trust, np.broadcast_to(j[:, None], (b, n, n)), axis=2)
    # (B, K, N): witness k excuses i's D (a retaliation; under justice also a punishment of an
    # agent of bad standing in k's eyes)
    excused = o.provoked[:, None] | ((t_kj < config.distrust) & justice)
    act = executed[:, None]  # (B, 1, N)
    up = witness & (act == C) & ~soc.grudge
    down = witness & (act == D) & ~excused
    trust = soc.trust
    trust = np.where(up, trust + config.witness_build * (1 - trust), trust)
    trust = np.where(down, trust * (1 - config.witness_collapse), trust)

    pb, pi = np.nonzero(paired)
    pj = j[pb, pi]
    trust[pb, pi, pj] = t_new[pb, pi]
    soc.grudge[pb, pi, pj] |= (hurt & (sc.dispositions == agents.GRIM))[pb, pi]
    code = np.where(executed == C, LAST_C, np.where(lawful, LAST_DJ, LAST_DU))
    soc.last[pb, pi, pj] = np.where(erase[pb, pj], LAST_C, code[pb, pi])
    soc.trust = trust

    def mask(x, fill):
        return np.where(paired, x, fill)

    return {
        "partner": partner.astype(np.int8),
        "intended": mask(intended, -1).astype(np.int8),
        "executed": mask(executed, -1).astype(np.int8),
        "prob": mask(prob, 1.0).astype(np.float32),
        "event": mask(event, -1).astype(np.int8),
        "witness": witness,
    }
