"""Evolutionary dynamics (data_gen/evolution.py) against textbook cases with closed forms.

The textbook game: tit-for-tat (TFT) against always-defect (ALLD) in a prisoner's dilemma
repeated m times (Nowak 2006, ch. 4). Per repeated game: TFT-TFT mR, TFT-ALLD S + (m-1)P,
ALLD-TFT T + (m-1)P, ALLD-ALLD mP. Both are strict Nash equilibria; the replicator dynamics
have one unstable interior rest point, TFT's invasion threshold x* = (d - b) / (a - b - c + d).
"""

import numpy as np
import pytest

from data_gen.evolution import Moran, basins, invasion_fitness, replicator, replicator_rhs

T, R, P, S, M = 5.0, 3.0, 1.0, 0.0, 10
A = np.array([[M * R, S + (M - 1) * P], [T + (M - 1) * P, M * P]])  # rows: TFT, ALLD
X_STAR = (A[1, 1] - A[0, 1]) / (A[0, 0] - A[0, 1] - A[1, 0] + A[1, 1])  # = 1/17


def ends_at_tft(x0: float) -> bool:
    return replicator(A, [x0, 1 - x0], t_end=200.0, points=2)[1][-1, 0, 0] > 0.5


def test_replicator_rhs_is_egttools_replicator_equation():
    from egttools.analytical import replicator_equation

    rng = np.random.default_rng(0)
    a, x = rng.random((6, 6)), rng.dirichlet(np.ones(6), 5)
    expected = np.stack([replicator_equation(xi, a) for xi in x])
    np.testing.assert_allclose(replicator_rhs(a, x), expected, rtol=1e-12, atol=1e-15)


def test_tft_invasion_threshold_matches_closed_form_to_1e6():
    lo, hi = 0.0, 0.5  # ALLD wins from lo, TFT from hi
    assert not ends_at_tft(X_STAR - 1e-3) and ends_at_tft(X_STAR + 1e-3)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ends_at_tft(mid) else (mid, hi)
    assert abs((lo + hi) / 2 - X_STAR) < 1e-6
    assert abs(X_STAR - 1 / 17) < 1e-15


def test_basin_share_agrees_with_the_threshold_within_its_ci():
    _, labels = basins(A, np.random.default_rng(1), 2000, t_end=200.0)
    share = (labels == 0b01).mean()  # only TFT left
    half = 1.96 * np.sqrt(share * (1 - share) / len(labels))
    assert set(np.unique(labels)) == {0b01, 0b10}
    assert abs(share - (1 - X_STAR)) < half


def test_invasion_fitness_signs():
    assert invasion_fitness(A, np.array([1.0, 0.0]))[1] < 0  # ALLD cannot invade TFT
    assert invasion_fitness(A, np.array([0.0, 1.0]))[0] < 0  # nor TFT ALLD


def closed_form_fixation(a, z, beta, inv, res):
    """rho = 1 / (1 + sum_k prod_{j<=k} exp(-beta (f_inv(j) - f_res(j)))), j invaders."""
    j = np.arange(1, z)
    f_inv = ((j - 1) * a[inv, inv] + (z - j) * a[inv, res]) / (z - 1)
    f_res = (j * a[res, inv] + (z - j - 1) * a[res, res]) / (z - 1)
    return 1 / (1 + np.cumprod(np.exp(-beta * (f_inv - f_res))).sum())


@pytest.mark.parametrize("z, beta", [(10, 0.1), (12, 1.0), (30, 0.05)])
def test_fixation_probabilities_match_the_closed_form(z, beta):
    moran = Moran(A, z, beta)
    rho, pi = moran.sml()
    for inv, res in ((0, 1), (1, 0)):
        expected = closed_form_fixation(A, z, beta, inv, res)
        assert abs(moran.fixation(inv, res) - expected) < 1e-10
        assert abs(rho[res, inv] - expected) < 1e-10
        # mu = 0 absorption from one invader among residents is the same number
        start = np.zeros(2, int)
        start[inv], start[res] = 1, z - 1
        assert abs(moran.absorption(start)[inv] - expected) < 1e-9
    # SML stationary, balance of the 2-state chain: pi_TFT rho(ALLD into TFT) = pi_ALLD
    # rho(TFT into ALLD)
    assert abs(pi.sum() - 1) < 1e-12 and abs(pi[0] * rho[0, 1] - pi[1] * rho[1, 0]) < 1e-12


def test_neutral_fixation_is_one_over_z():
    assert abs(Moran(np.ones((3, 3)), 12, 1.0).fixation(2, 0) - 1 / 12) < 1e-12


def test_full_chain_stationary_matches_detailed_balance():
    """Two types: a birth-death chain, pi_k / pi_(k-1) = T+(k-1) / T-(k)."""
    z, beta, mu = 12, 0.5, 0.05
    moran = Moran(A, z, beta)
    pi = moran.stationary(mu)
    k_of = moran.states[:, 0]  # TFT count of each state

    def t_plus(k):  # one more TFT: an ALLD dies (imitates a TFT or mutates)
        if k in (0, z):
            return mu * (z - k) / z
        f_t = ((k - 1) * A[0, 0] + (z - k) * A[0, 1]) / (z - 1)
        f_d = (k * A[1, 0] + (z - k - 1) * A[1, 1]) / (z - 1)
        fermi = 1 / (1 + np.exp(-beta * (f_t - f_d)))
        return (z - k) / z * ((1 - mu) * k / (z - 1) * fermi + mu)

    def t_minus(k):
        if k in (0, z):
            return mu * k / z
        f_t = ((k - 1) * A[0, 0] + (z - k) * A[0, 1]) / (z - 1)
        f_d = (k * A[1, 0] + (z - k - 1) * A[1, 1]) / (z - 1)
        fermi = 1 / (1 + np.exp(beta * (f_t - f_d)))
        return k / z * ((1 - mu) * (z - k) / (z - 1) * fermi + mu)

    w = np.cumprod([1.0] + [t_plus(k - 1) / t_minus(k) for k in range(1, z + 1)])
    expected = w / w.sum()  # by TFT count 0..z
    np.testing.assert_allclose(pi[np.argsort(k_of)], expected, rtol=1e-8)
    path = moran.path(mu, [1, z - 1], steps=4000, every=4000)
    assert abs(path[-1, 0] - expected @ np.arange(z + 1) / z) < 1e-3  # converging to it


def test_sml_stationary_is_exact_for_three_types():
    """Three types: the SML chain's stationary distribution solves pi = pi T (checked densely)."""
    a = np.array([[3.0, 0.5, 1.0], [4.0, 1.0, 0.2], [2.0, 2.5, 1.5]])
    moran = Moran(a, 20, 0.7)
    rho, pi = moran.sml()
    t = rho / 2
    t[np.diag_indices(3)] = 1 - t.sum(1)
    np.testing.assert_allclose(pi @ t, pi, atol=1e-14)
    assert abs(pi.sum() - 1) < 1e-12
