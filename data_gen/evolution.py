"""Evolutionary dynamics on a K x K matrix game (egttools): replicator flow, basins, Moran chain.

The game is A[i, j], the payoff of type i against type j; the fitness of type i in a population
of mix x is (A x)_i (for Polis, data_gen/polis_game.py measures A). Two models of selection:

- Replicator dynamics (infinite population): dx_i/dt = x_i ((A x)_i - x . A x), the right-hand
  side of egttools.analytical.replicator_equation, integrated with scipy's DOP853 (rtol 1e-10).
  `basins` integrates many starts drawn uniformly on the simplex (a Dirichlet(1, ..., 1)) and
  labels each by where it ends: the set of types holding more than `present` of the population.
  A basin's share of starts estimates its share of the simplex's volume.
- The pairwise-comparison process of a finite population of Z (egttools.analytical.
  PairwiseComparison; Traulsen, Nowak and Pacheco 2006): at each step a random individual A
  picks a random model B and adopts B's type with probability 1 / (1 + exp(-beta (f_B - f_A))),
  or, with probability mu, mutates to a uniformly chosen other type. It is a Moran-type birth-
  death process (one individual changes per step) with a fitness-dependent imitation rule;
  fitness is the average payoff against the Z - 1 others. egttools offers it exactly (transition
  matrices, fixation probabilities), which a Moran process simulated by axelrod would estimate
  by sampling only. `Moran` gives:
  - `sml()`: the small-mutation limit (Fudenberg and Imhof 2006): the fixation probability
    rho[r, m] of one mutant m in a monomorphic population of r, and the stationary distribution
    of the chain on the K monomorphic states;
  - `stationary(mu)`: the exact stationary distribution of the full chain with mutation mu over
    all C(Z + K - 1, K - 1) compositions (a sparse linear solve), and `mean_mix` of it;
  - `path(mu, start, steps)`: the expected composition of the chain step by step from a start
    state (the average of every run from that start, computed, not sampled);
  - `absorption(start)`: with mu = 0, the probability that each type takes over the population
    from a start composition (e.g. a civilized society plus one mutant).
"""

from __future__ import annotations

from functools import cached_property

import egttools
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from egttools.analytical import PairwiseComparison
from egttools.games import Matrix2PlayerGameHolder
from scipy.integrate import solve_ivp


def replicator_rhs(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx/dt for a batch of mixes x (M, K): x_i ((A x)_i - x . A x), the replicator equation;
    `a` is one game (K, K) or one per mix (M, K, K)."""
    ax = x @ a.T if a.ndim == 2 else np.einsum("mij,mj->mi", a, x)  # (M, K): (A x)_i
    return x * (ax - (x * ax).sum(1, keepdims=True))


def replicator(a: np.ndarray, x0: np.ndarray, t_end: float, points: int = 200):
    """Trajectories from starts x0 (M, K) (or one (K,)) on the game `a` (K, K) or (M, K, K):
    times (P,) (0, then log-spaced up to t_end) and mixes (P, M, K)."""
    x0 = np.atleast_2d(np.asarray(x0, np.float64))
    m, k = x0.shape
    # log-spaced: the flow is fast early and slow late
    times = np.concatenate([[0.0], np.geomspace(t_end * 1e-4, t_end, points - 1)])
    times = times if points > 2 else np.array([0.0, t_end])
    sol = solve_ivp(
        lambda _, y: replicator_rhs(a, y.reshape(m, k)).ravel(),
        (0.0, t_end),
        x0.ravel(),
        method="DOP853",
        t_eval=times,
        rtol=1e-10,
        atol=1e-12,
    )
    if not sol.success:
        raise RuntimeError(f"replicator integration failed: {sol.message}")
    return times, sol.y.T.reshape(points, m, k)


def basins(
    a: np.ndarray, rng: np.random.Generator, samples: int, t_end: float, present: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Starts (M, K) drawn uniformly on the simplex and each one's end label (M,) int: a bit
    mask of the types above `present` at t_end (bit i = type i)."""
    starts = rng.dirichlet(np.ones(len(a)), samples)  # (M, K)
    end = replicator(a, starts, t_end, points=2)[1][-1]  # (M, K)
    labels = ((end > present) * (1 << np.arange(len(a)))).sum(1)
    return starts, labels


def invasion_fitness(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(K,) (A x)_i - x . A x: the growth rate of a rare type i in a population at x."""
    f = a @ x
    return f - x @ f


class Moran:
    """The pairwise-comparison process of a population of `size` on the game `a`, selection
    intensity `beta`; see the module docstring."""

    def __init__(self, a: np.ndarray, size: int, beta: float):
        self.a = np.ascontiguousarray(a, np.float64)
        self.k, self.size, self.beta = len(a), size, beta
        # egttools' model keeps a reference to the game, which must outlive it
        self._game = Matrix2PlayerGameHolder(self.k, self.a)
        self._model = PairwiseComparison(size, self._game)
        self._transitions: dict[float, sp.csr_matrix] = {}

    @cached_property
    def states(self) -> np.ndarray:
        """(S, K) int64: the count of each type in egttools' state order."""
        n = egttools.calculate_nb_states(self.size, self.k)
        return np.array(
            [egttools.sample_simplex(i, self.size, self.k) for i in range(n)], dtype=np.int64
        )

    def index(self, counts) -> int:
        """egttools' index of a composition (K,) of counts summing to `size`."""
        return int(egttools.calculate_state(self.size, np.asarray(counts, np.uint64)))

    def fixation(self, invader: int, resident: int) -> float:
        """Probability that one `invader` takes over a population of `resident`s."""
        return float(self._model.calculate_fixation_probability(invader, resident, self.beta))

    def sml(self) -> tuple[np.ndarray, np.ndarray]:
        """Small-mutation limit: rho (K, K), rho[r, m] = fixation of one m among r's (0 on the
        diagonal), and the stationary distribution (K,) over monomorphic states."""
        trans, rho = self._model.calculate_transition_and_fixation_matrix_sml(self.beta)
        return np.asarray(rho), _stationary_gth(np.asarray(trans))

    def transition(self, mu: float) -> sp.csr_matrix:
        """(S, S) row-stochastic: P[s, s'] = probability of the step s -> s' (cached per mu)."""
        if mu not in self._transitions:
            p = self._model.calculate_transition_matrix(self.beta, mu)
            self._transitions[mu] = sp.csr_matrix(p)
        return self._transitions[mu]

    def stationary(self, mu: float) -> np.ndarray:
        """(S,) the stationary distribution of the chain with mutation mu > 0."""
        if not mu > 0:
            raise ValueError("the full chain needs mu > 0 (mu = 0 has absorbing states)")
        return _stationary(self.transition(mu))

    def mean_mix(self, dist: np.ndarray) -> np.ndarray:
        """(K,) expected share of each type under a distribution over states (S,)."""
        return dist @ self.states / self.size

    def path(self, mu: float, start, steps: int, every: int) -> np.ndarray:
        """(steps // every + 1, K): the expected mix every `every` steps from composition
        `start`, by propagating the state distribution (p <- p P)."""
        pt = self.transition(mu).T.tocsr()
        p = np.zeros(pt.shape[0])
        p[self.index(start)] = 1.0
        out = [self.mean_mix(p)]
        for step in range(1, steps + 1):
            p = pt @ p
            if step % every == 0:
                out.append(self.mean_mix(p))
        return np.array(out)

    def absorption(self, start) -> np.ndarray:
        """(K,) with mu = 0: the probability that type i takes over from composition `start`."""
        return self._absorption[self.index(start)]

    @cached_property
    def _absorption(self) -> np.ndarray:
        """(S, K): from every state, the probability of ending monomorphic in each type
        (h = (I - Q)^-1 R over the transient states Q, into the absorbing ones R)."""
        p = self.transition(0.0)
        mono = np.flatnonzero((self.states == self.size).any(1))  # (K,) absorbing states
        kind = self.states[mono].argmax(1)  # type of each absorbing state
        free = np.setdiff1d(np.arange(p.shape[0]), mono)
        m = (sp.identity(len(free), format="csc") - p[free][:, free]).tocsc()
        out = np.zeros((p.shape[0], self.k))
        out[np.ix_(free, kind)] = _solve(m, p[free][:, mono].toarray())  # (F, K)
        out[mono, kind] = 1.0
        return out


def _solve(m: sp.csc_matrix, b: np.ndarray) -> np.ndarray:
    """Solve m x = b for b (n,) or (n, c): GMRES preconditioned by one incomplete LU (a sparse
    direct LU fills in badly on the simplex lattice), each column checked to a relative
    residual of 1e-10."""
    if m.shape[0] <= 2000:
        return sla.spsolve(m, b).reshape(b.shape)
    pre = sla.LinearOperator(m.shape, sla.spilu(m, drop_tol=1e-5, fill_factor=20).solve)
    cols = b.reshape(len(b), -1)
    x = np.empty_like(cols, dtype=np.float64)
    for c in range(cols.shape[1]):
        x[:, c], info = sla.gmres(
            m, cols[:, c], M=pre, rtol=1e-12, atol=0.0, restart=50, maxiter=500
        )
        resid = np.abs(m @ x[:, c] - cols[:, c]).max() / max(np.abs(cols[:, c]).max(), 1e-300)
        if info != 0 or resid > 1e-10:
            raise RuntimeError(f"sparse solve did not converge (info {info}, residual {resid:.1e})")
    return x.reshape(b.shape)


def _stationary_gth(p: np.ndarray) -> np.ndarray:
    """The stationary distribution of a small dense row-stochastic chain by the Grassmann-
    Taksar-Heyman elimination, which uses no subtraction and so stays accurate when fixation
    probabilities are as small as 1e-300; all NaN when the chain is reducible (a row of zeros
    towards the states eliminated so far, e.g. fixation probabilities that underflow to 0)."""
    p = np.array(p, np.float64)
    n = len(p)
    for k in range(n - 1, 0, -1):
        out = p[k, :k].sum()
        if not out > 0:
            return np.full(n, np.nan)
        p[:k, k] /= out
        p[:k, :k] += np.outer(p[:k, k], p[k, :k])
    pi = np.zeros(n)
    pi[0] = 1.0
    for k in range(1, n):
        pi[k] = pi[:k] @ p[:k, k]
    return pi / pi.sum()


def _stationary(p: sp.csr_matrix) -> np.ndarray:
    """The stationary distribution pi = pi P of an irreducible row-stochastic chain: fix
    pi_0 = 1 and solve the other equations, (I - P_rest)^T pi_rest = P[0, rest]."""
    n = p.shape[0]
    if n == 1:
        return np.ones(1)
    rest = (sp.identity(n - 1, format="csr") - p[1:, 1:]).T.tocsc()
    x = _solve(rest, np.asarray(p[0, 1:].todense()).ravel())
    pi = np.concatenate([[1.0], x])
    return np.clip(pi, 0.0, None) / np.clip(pi, 0.0, None).sum()
