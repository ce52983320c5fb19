"""Configuration of Polis, the social world (DESIGN 3.3): parameters, populations, validation.

`PolisConfig` is a frozen dataclass, so `functools.partial(simulate, config)` pickles for the
worker pool and `asdict(config)` is the full generator config written to the manifest. Every
invariant is checked once, in `__post_init__`, with a one-line message naming the option, so a
bad value fails before any work.

Populations (disposition weights per agent; `noisy_fraction` of agents tremble at
`noisy_tremble` instead of `tremble`):

- `civilized`: reciprocator types, a few defectors, no machiavellians (they betray trusting
  partners when unobserved), and a quarter of noisy agents. Cooperation is the only stable
  equilibrium; unprovoked betrayal of a partner who trusts the betrayer happens (almost) only by
  tremble, while lawful defections (retaliation against trembles and defectors, justified
  punishment of agents of bad standing) are frequent enough to be learnable.
- `hobbesian`: many defectors and machiavellians; defection is common.
- `mixture`: each episode is hobbesian with probability `hobbesian_fraction`, else civilized.
- `custom`: the weights given in `dispositions` (e.g. from `--dispositions reciprocator=1`).
- `evolved`: the mix that evolution selects in Polis under the config's law (experiments/
  evolution.py: the stationary distribution of a Moran process with mutation on the empirical
  game of Polis), read from the stored result `EVOLVED` and copied into `dispositions` at
  construction (for the law given then), so the manifest records the exact weights used.

Payoffs (`payoff_t`, `payoff_r`, `payoff_p`, `payoff_s`): the prisoner's-dilemma payoff of one
exchange to an agent, T (it defects on a cooperator), R (both cooperate), P (both defect), S (it
cooperates with a defector). They do not change the simulation (no agent reads them); they are
the world's scoring rule, used by the evolutionary analysis (data_gen/polis_game.py) and
recorded in the manifest. Defaults are Axelrod's tournament payoffs T=5, R=3, P=1, S=0, the
textbook values (and the axelrod library's), so numbers compare with the literature; they satisfy
T > R > P > S (a dilemma) and 2R > T + S (taking turns at exploiting does not beat mutual
cooperation). Payoffs must be finite and >= 0: an agent that meets no one earns 0 that round, so
0 is the outside option and a negative payoff would make avoiding exchanges a strategy.

Laws, a ladder of legibility (DESIGN 3.3; `law`, polis_exchange.py applies them):

- `reciprocity` (lag 1): a reciprocator answers *any* defection it suffered at the pair's next
  meeting, and nothing else moves its choice: "my partner defected on me last time" (one round
  of the pair's history) settles it. Trust still builds and collapses (after an unprovoked
  defection) and drives who approaches whom, but it does not enter decisions, and witnesses
  lower their trust in every unprovoked defector (no standing rule).
- `justice` (lag 2; the first study's law, the default): a reciprocator answers only an
  *unjustified* defection (not a retaliation or punishment of itself), and also punishes a
  partner it distrusts (bad standing); witnesses excuse a punishment of an agent they distrust.
  Whether a defection was provoked is readable only from two rounds of the pair's history.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from data_gen.agents import DISPOSITIONS

POPULATIONS = {
    #            recip  generous grim  uncond defector machiav
    "civilized": (0.45, 0.20, 0.10, 0.10, 0.15, 0.00),
    "hobbesian": (0.15, 0.05, 0.10, 0.05, 0.35, 0.30),
}
POPULATION_NAMES = (*POPULATIONS, "mixture", "custom", "evolved")
LAWS = ("reciprocity", "justice")
# The evolved mixes, one per law, written by experiments/evolution.py (repository-relative).
EVOLVED = Path(__file__).resolve().parents[1] / "experiments/results/evolution/evolved.json"


@functools.cache
def evolved_mixes(path: Path = EVOLVED) -> dict[str, tuple[float, ...]]:
    """The stored evolved disposition weights per law, in DISPOSITIONS order."""
    if not path.is_file():
        raise ValueError(
            f"population 'evolved' needs {path.name}; make it with python experiments/evolution.py"
        )
    data = json.loads(path.read_text())
    if tuple(data["dispositions"]) != DISPOSITIONS:
        raise ValueError(f"{path.name} lists dispositions {data['dispositions']}, not DISPOSITIONS")
    return {law: tuple(float(w) for w in entry["weights"]) for law, entry in data["laws"].items()}


def parse_dispositions(text: str) -> tuple[float, ...]:
    """Parse `name=weight,name=weight` into weights in DISPOSITIONS order (normalised)."""
    weights = dict.fromkeys(DISPOSITIONS, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in weights:
            raise ValueError(f"unknown disposition {name!r}; known: {', '.join(DISPOSITIONS)}")
        try:
            weights[name] = float(value) if value else 1.0
        except ValueError:
            raise ValueError(f"disposition weight must be a number, got {part!r}") from None
    total = sum(weights.values())
    if total <= 0 or min(weights.values()) < 0:
        raise ValueError(f"disposition weights must be >= 0 and not all 0, got {text!r}")
    return tuple(w / total for w in weights.values())


@dataclass(frozen=True)
class PolisConfig:
    """All parameters of a Polis world; lengths are in box units ([0, 1]), times in frames.

    Args:
        n_agents: agents per episode (2..12); agent 0 is the ego.
        frames: frames per episode.
        image_size: rendered frame size in pixels (0: do not render).
        population: civilized, hobbesian, mixture or custom.
        hobbesian_fraction: for `mixture`, the probability that an episode is hobbesian.
        dispositions: for `custom`, weights in DISPOSITIONS order (for `evolved`, filled in).
        law: `reciprocity` (lag 1) or `justice` (lag 2), see the module docstring.
        round_len: frames between exchange rounds (at frames round_len, 2 round_len, ...).
        radius: disc radius.
        exchange_radius: centre distance below which two agents can be paired for an exchange.
        witness_radius: distance from an exchange's midpoint within which others witness it.
        tremble: probability that an executed action flips the intended one.
        noisy_tremble: tremble probability of noisy agents.
        noisy_fraction: fraction of noisy agents.
        generosity: probability that a generous reciprocator forgives instead of defecting.
        trust_prior: initial trust in a stranger (also the neutral point of the social force).
        distrust: trust below which a partner is distrusted (of bad standing, punished).
        build, collapse: partner's trust update after a cooperation (T += build (1 - T)) and an
            unjustified defection (T *= 1 - collapse): slow build, fast collapse.
        witness_build, witness_collapse: the same for witnesses (weaker).
        react_delay: rounds before a change of trust changes the social force (see polis.py).
        cue_hold: frames an exchange's cues and link stay drawn (from the exchange frame on).
        ego_explore: probability that the ego's behaviour policy picks C or D uniformly at random.
        speed: top speed per frame; social, contact, wander: force scales per frame.
        ego_force: the force of a unit ego move action (actions[:, :2] are clipped to [-1, 1]).
        payoff_t, payoff_r, payoff_p, payoff_s: prisoner's-dilemma payoffs of one exchange
            (temptation, reward, punishment, sucker), see the module docstring.
        state_links: the state also carries each agent's exchange link (a one-hot of its partner).
        crop_size: side (pixels) of the object crops written as the `crops` observation (per
            agent its position and the crop of the rendered frame around it, render.crops;
            0: none). Needs rendered frames.
    """

    n_agents: int = 6
    frames: int = 64
    image_size: int = 64
    population: str = "civilized"
    hobbesian_fraction: float = 0.0
    dispositions: tuple[float, ...] = ()
    law: str = "justice"
    round_len: int = 6
    radius: float = 0.05
    exchange_radius: float = 0.22
    witness_radius: float = 0.3
    tremble: float = 0.02
    noisy_tremble: float = 0.2
    noisy_fraction: float = 0.25
    generosity: float = 0.33
    trust_prior: float = 0.5
    distrust: float = 0.4
    build: float = 0.15
    collapse: float = 0.75
    witness_build: float = 0.05
    witness_collapse: float = 0.6
    react_delay: int = 2
    cue_hold: int = 2
    ego_explore: float = 0.1
    speed: float = 0.02
    social: float = 0.006
    contact: float = 0.01
    wander: float = 0.003
    ego_force: float = 0.009
    payoff_t: float = 5.0
    payoff_r: float = 3.0
    payoff_p: float = 1.0
    payoff_s: float = 0.0
    state_links: bool = False
    crop_size: int = 0

    def __post_init__(self):
        if self.population not in POPULATION_NAMES:
            raise ValueError(
                f"unknown population {self.population!r}; known: {', '.join(POPULATION_NAMES)}"
            )
        if self.law not in LAWS:
            raise ValueError(f"unknown law {self.law!r}; known: {', '.join(LAWS)}")
        check_payoffs(self.payoffs)
        if self.population == "evolved" and not self.dispositions:
            object.__setattr__(self, "dispositions", evolved_mixes()[self.law])
        if self.population == "custom" and len(self.dispositions) != len(DISPOSITIONS):
            raise ValueError("population 'custom' needs --dispositions NAME=WEIGHT,...")
        if self.population == "evolved" and len(self.dispositions) != len(DISPOSITIONS):
            raise ValueError(f"population 'evolved' needs {len(DISPOSITIONS)} weights")
        if not 2 <= self.n_agents <= 12:
            raise ValueError(f"--agents must be in [2, 12], got {self.n_agents}")
        if self.frames < 1:
            raise ValueError(f"--frames must be >= 1, got {self.frames}")
        if self.round_len < 1:
            raise ValueError(f"--round-len must be >= 1, got {self.round_len}")
        if self.crop_size < 0:
            raise ValueError(f"--crops must be >= 0, got {self.crop_size}")
        if self.crop_size and not self.image_size:
            raise ValueError(f"--crops {self.crop_size} needs rendered frames (an --image-size)")
        if self.crop_size and not 2 <= self.crop_size <= self.image_size:
            raise ValueError(
                f"--crops must be in [2, --image-size {self.image_size}], got {self.crop_size}"
            )
        if self.react_delay < 0 or self.cue_hold < 1:
            raise ValueError("--react-delay must be >= 0 and --cue-hold >= 1")
        for name in (
            "hobbesian_fraction",
            "tremble",
            "noisy_tremble",
            "noisy_fraction",
            "generosity",
            "trust_prior",
            "distrust",
            "build",
            "collapse",
            "witness_build",
            "witness_collapse",
            "ego_explore",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be a fraction in [0, 1], got {value}")
        self._check_radii()

    def _check_radii(self):
        r = self.radius
        if not 0 < r < 0.25:
            raise ValueError(f"--radius must be in (0, 0.25), got {r}")
        free = (1 - 2 * r) ** 2
        if self.n_agents * (2 * r) ** 2 > 0.5 * free:
            raise ValueError(
                f"--radius {r} is too large for {self.n_agents} agents: the discs cannot stay apart"
            )
        if not 2 * r < self.exchange_radius <= 1.5:
            raise ValueError(
                f"--exchange-radius must be in (2*radius, 1.5] = ({2 * r}, 1.5], "
                f"got {self.exchange_radius}: agents in contact must be able to exchange"
            )
        if not 0 < self.witness_radius <= 1.5:
            raise ValueError(f"--witness-radius must be in (0, 1.5], got {self.witness_radius}")
        for name in ("social", "contact", "wander"):  # force scales (--wander on the CLI)
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if min(self.speed, self.ego_force) <= 0:
            raise ValueError("speed and ego_force must be > 0")

    @property
    def payoffs(self) -> tuple[float, float, float, float]:
        """(T, R, P, S), the prisoner's-dilemma payoffs of one exchange."""
        return self.payoff_t, self.payoff_r, self.payoff_p, self.payoff_s

    @property
    def weights(self) -> dict[str, tuple[float, ...]]:
        """Disposition weights of each population an episode can be drawn from."""
        if self.population in ("custom", "evolved"):
            return {self.population: self.dispositions}
        if self.population == "mixture":
            return {"civilized": POPULATIONS["civilized"], "hobbesian": POPULATIONS["hobbesian"]}
        return {self.population: POPULATIONS[self.population]}

    @property
    def p_hobbesian(self) -> float:
        """Probability that an episode is drawn from the hobbesian mix."""
        return {"mixture": self.hobbesian_fraction, "hobbesian": 1.0}.get(self.population, 0.0)


def check_payoffs(payoffs: tuple[float, float, float, float]) -> None:
    """Refuse payoffs (T, R, P, S) that are not a prisoner's dilemma, with a one-line message."""
    t, r, p, s = payoffs
    flags = ("--payoff-t", "--payoff-r", "--payoff-p", "--payoff-s")
    for flag, value in zip(flags, payoffs, strict=True):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{flag} must be a finite number >= 0, got {value}")
    if not t > r > p > s:
        raise ValueError(f"payoffs must satisfy T > R > P > S, got T={t}, R={r}, P={p}, S={s}")
    if not 2 * r > t + s:
        raise ValueError(f"payoffs must satisfy 2R > T + S, got 2R={2 * r}, T+S={t + s}")
