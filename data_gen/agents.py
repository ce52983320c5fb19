"""Polis dispositions: who cooperates with whom, and how each executed action is classified.

One function per disposition, each vectorised over any batch of (agent, partner) exchanges and
returning the probability that the agent *intends* to cooperate. Every function reads the same
`Obs`, the agent's view of one exchange:

- `provoked`: the partner's last action toward the agent was an unprovoked defection;
- `distrusted`: the agent's trust in the partner is below the distrust threshold (the partner
  is of bad standing in the agent's eyes: it defected on the agent, or was seen defecting);
- `grudge`: the partner once defected on the agent unprovoked (kept by grim agents only);
- `witnessed`: a third agent stands within the witness radius of the exchange;
- `generosity`: the forgiving probability of generous reciprocators.

The executed action then flips with the agent's tremble probability (`executed_prob`). Each
executed action gets one event type (`classify`), the labels of the manifest's base rates:
a defection is a *retaliation* if the partner had just defected on the agent unprovoked, a
*justified punishment* if the agent distrusts (or holds a grudge against) the partner, and an
*unprovoked defection* otherwise; a cooperation is a *forgiveness* when retaliation or
punishment was warranted, and a plain *cooperation* otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

C, D = 1, 0  # executed / intended action codes
EVENTS = ("cooperation", "unprovoked_defection", "retaliation", "justified_punishment",
          "forgiveness")  # fmt: skip
COOPERATION, UNPROVOKED, RETALIATION, JUSTIFIED, FORGIVENESS = range(5)


class Obs(NamedTuple):
    """An agent's view of one exchange; every field has the same shape (any batch shape)."""

    provoked: np.ndarray  # bool
    distrusted: np.ndarray  # bool
    grudge: np.ndarray  # bool
    witnessed: np.ndarray  # bool
    generosity: float


def reciprocator(o: Obs) -> np.ndarray:
    """Cooperates with partners it trusts; defects to retaliate right after being defected on
    unprovoked, and to punish a partner it distrusts (bad standing). Forgives once trust rebuilt."""
    return np.where(o.provoked | o.distrusted, 0.0, 1.0)


def generous(o: Obs) -> np.ndarray:
    """Generous reciprocator: a reciprocator that, whenever it would retaliate or punish,
    cooperates instead with probability `generosity`."""
    return np.where(o.provoked | o.distrusted, o.generosity, 1.0)


def grim(o: Obs) -> np.ndarray:
    """Grim trigger: a reciprocator that never forgives: after one unprovoked defection by a
    partner it defects on that partner forever (its trust in it never rebuilds either)."""
    return np.where(o.provoked | o.distrusted | o.grudge, 0.0, 1.0)


def cooperator(o: Obs) -> np.ndarray:
    """Unconditional cooperator: always cooperates."""
    return np.ones(np.shape(o.provoked))


def defector(o: Obs) -> np.ndarray:
    """Unconditional defector: always defects."""
    return np.zeros(np.shape(o.provoked))


def machiavellian(o: Obs) -> np.ndarray:
    """Cooperates when a witness is near the exchange, defects when unobserved."""
    return np.where(o.witnessed, 1.0, 0.0)


POLICIES = (reciprocator, generous, grim, cooperator, defector, machiavellian)
DISPOSITIONS = tuple(f.__name__ for f in POLICIES)
RECIPROCATOR, GENEROUS, GRIM, COOPERATOR, DEFECTOR, MACHIAVELLIAN = range(len(POLICIES))


def cooperate_prob(disposition: np.ndarray, o: Obs) -> np.ndarray:
    """Probability of intending to cooperate, per exchange; `disposition` has the shape of `o`."""
    return np.select([disposition == k for k in range(len(POLICIES))], [f(o) for f in POLICIES])


def executed_prob(p_intend: np.ndarray, tremble: np.ndarray, executed: np.ndarray) -> np.ndarray:
    """Exact probability of the executed action: the intended one, flipped with prob `tremble`."""
    p_c = p_intend * (1 - tremble) + (1 - p_intend) * tremble
    return np.where(executed == C, p_c, 1 - p_c)


def classify(executed: np.ndarray, o: Obs) -> np.ndarray:
    """Event type (index into EVENTS) of each executed action."""
    warranted = o.provoked | o.distrusted | o.grudge
    defect = np.where(o.provoked, RETALIATION, np.where(warranted, JUSTIFIED, UNPROVOKED))
    return np.where(executed == C, np.where(warranted, FORGIVENESS, COOPERATION), defect)
