"""The frame-only observer (DESIGN 4.4): a Bayesian observer that knows Polis's law and its
population's mix, but sees only what a model's context shows.

It is the achievable ceiling for a model that is given the last `context` frames: no
dispositions, no trust, no history before the window. Per item, it reads the exchanges whose
frames lie in [t* - context, t*) (who met whom, their executed actions, where everyone stood, so
who witnessed), and scores the event: the surprisal -log P(the actors' executed actions at t* |
those exchanges).

Inference, exact under its assumptions:
- Hidden per agent: a disposition d (agents.DISPOSITIONS) and a tremble class (normal or noisy),
  drawn from the population's prior (PolisConfig.weights, noisy_fraction); per episode, for a
  `mixture` world, the population itself.
- The social state before the window is unknown; the observer takes the world's start state
  there (trust at its prior, no memories, no grudges): what a fresh observer assumes.
- Given the observed actions, the law (polis_exchange.exchange) updates that state
  deterministically, except that a grim agent's grudge depends on its own disposition. The
  observer therefore replays the window once per hypothesis h = (d, tremble class) with every
  agent assigned h: agent i's likelihood under h is the product of the exact policy
  probabilities of its observed actions (exchange() with the actions forced records them), and
  its actions at t* get their probability the same way. The one approximation: in the replay
  of hypothesis h, the *other* agents' grudges are also those of h (it matters only for how a
  grim agent's defection is classified by its victims).
- The ego's (agent 0's) actions are exogenous inputs: they update the others' states but are
  never scored, and the ego is never an actor of an event.
Posterior per agent and population, P(actions at t*) = sum over populations of P(population |
window) x prod over actors of sum_h P(h | window, population) P(action | h).
"""

from __future__ import annotations

import numpy as np

from data_gen import polis
from data_gen.polis_config import POPULATIONS, PolisConfig
from data_gen.polis_exchange import Social, exchange

EGO = 0


def _hypotheses(config: PolisConfig) -> list[tuple[int, float, float]]:
    """(disposition, tremble, prior of the tremble class) of every hypothesis."""
    classes = [(config.tremble, 1 - config.noisy_fraction), (config.noisy_tremble,
               config.noisy_fraction)]  # fmt: skip
    return [(d, tr, w) for d in range(len(POPULATIONS["civilized"])) for tr, w in classes if w > 0]


def _replay(config: PolisConfig, truth: dict, frames: np.ndarray, event: np.ndarray, d: int,
            tremble: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Under hypothesis (d, tremble) for every agent: log-likelihood (E, N) of each agent's
    observed actions in `frames` (E, F), and the probability (E, N) of its action at `event`
    (E,) (1 where it has none)."""
    e_n, n = truth["partner"].shape[0], truth["partner"].shape[2]
    rows = np.arange(e_n)
    sc = polis.Scenario(
        pos0=np.zeros((e_n, n, 2)),
        dispositions=np.full((e_n, n), d, np.int8),
        tremble=np.full((e_n, n), tremble),
        hobbesian=np.zeros(e_n, bool),
        wander=np.zeros((0, e_n, n, 2), np.float32),
        u_intend=np.full((1, e_n, n), 0.5),
        u_tremble=np.ones((1, e_n, n)),
        u_explore=np.ones((1, e_n)),
    )
    soc = Social.start(config, e_n, n)
    no_erase = np.zeros((e_n, n), bool)
    loglik = np.zeros((e_n, n))
    for k in range(frames.shape[1] + 1):
        t = event if k == frames.shape[1] else frames[:, k]  # (E,)
        partner = truth["partner"][rows, t].astype(np.int64)  # (E, N)
        executed = truth["executed"][rows, t]  # (E, N) forced: what was observed
        pos = truth["positions"][rows, t].astype(np.float64)  # (E, N, 2)
        rec = exchange(config, soc, sc, 0, pos, partner, executed, no_erase)
        if k == frames.shape[1]:
            return loglik, rec["prob"].astype(np.float64)
        loglik += np.log(np.maximum(rec["prob"], 1e-300))
    raise AssertionError("unreachable")


def frame_only_surprisal(config: PolisConfig, truth: dict, t_event: np.ndarray, context: int,
                         actors: np.ndarray) -> np.ndarray:  # fmt: skip
    """-log P(actors' executed actions at t_event | the exchanges in the last `context` frames).

    truth: per-episode arrays (E, T, ...) `partner`, `executed`, `positions`; t_event (E,) int;
    context: frames the observer sees before t_event (>= 1); actors (E, k) agent indices whose
    actions at t_event are scored (-1: none; the ego is never scored). Returns (E,) float64.
    """
    t_event = np.asarray(t_event, dtype=int)
    if context < 1 or np.any(t_event - context < 0):
        raise ValueError(f"the frame-only observer needs {context} >= 1 frames before every t*")
    frames = t_event[:, None] - context + np.arange(context)  # (E, F): the visible frames
    actors = np.atleast_2d(np.asarray(actors, dtype=int).T).T  # (E, k)
    rows = np.arange(len(t_event))[:, None]
    hyps = _hypotheses(config)
    loglik, prob = zip(
        *(_replay(config, truth, frames, t_event, d, tr) for d, tr, _ in hyps), strict=True
    )
    loglik, prob = np.stack(loglik, -1), np.stack(prob, -1)  # (E, N, h) each
    scored = np.ones(loglik.shape[1], bool)
    scored[EGO] = False  # the ego's actions are inputs, not evidence about anyone's disposition
    total_log, total_p = [], []
    p_pop = {"civilized": 1 - config.p_hobbesian, "hobbesian": config.p_hobbesian}
    for pop, weights in config.weights.items():
        prior = np.array([weights[d] * w for d, _, w in hyps])  # (h,)
        with np.errstate(divide="ignore"):
            joint = np.log(prior) + loglik  # (E, N, h)
        m = joint.max(-1, keepdims=True)
        evidence = m[..., 0] + np.log(np.exp(joint - m).sum(-1))  # (E, N) log P(actions_i)
        post = np.exp(joint - evidence[..., None])  # (E, N, h)
        p_act = (post * prob).sum(-1)  # (E, N) P(agent's action at t* | window, population)
        p_act = np.where(actors >= 0, p_act[rows, np.maximum(actors, 0)], 1.0).prod(1)  # (E,)
        weight = p_pop.get(pop, 1.0) if len(config.weights) > 1 else 1.0
        total_log.append(np.log(weight) + (evidence * scored).sum(1))  # (E,)
        total_p.append(p_act)
    total_log = np.stack(total_log)  # (P, E)
    post_pop = np.exp(total_log - total_log.max(0))
    post_pop /= post_pop.sum(0)
    p = (post_pop * np.stack(total_p)).sum(0)  # (E,)
    return -np.log(np.maximum(p, 1e-300))
