"""Probe maths against hand-computed cases and references (issue 5): no data, no models."""

import numpy as np
import pytest
import yaml

from data_gen import render
from pwm.probes import baselines, linear
from pwm.probes import metrics as M
from pwm.probes.config import ProbeError, load_config
from pwm.probes.scores import aligned, check_windows, event_scores


def test_paired_accuracy_counts_ties_as_half():
    imp, pl = np.array([3.0, 2.0, 1.0, 5.0]), np.array([1.0, 2.0, 4.0, 5.0])
    assert M.pair_outcomes(imp, pl).tolist() == [1.0, 0.5, 0.0, 0.5]
    assert M.paired_accuracy(imp, pl) == 0.5
    assert np.isnan(M.paired_accuracy(np.array([]), np.array([])))


def test_last_bit_differences_are_ties_and_real_differences_are_not():
    # two sides holding the same float32 scores, summed in another order or nudged by a few
    # ulps (another batch or thread count), are a tie; a difference of 1e-4 relative is not
    rng = np.random.default_rng(0)
    a = rng.normal(size=(1000, 2)).astype(np.float32)
    imp, pl = a.sum(1, dtype=np.float32), a[:, ::-1].sum(1, dtype=np.float32)
    nudged = np.nextafter(np.nextafter(imp, np.float32(np.inf)), np.float32(np.inf))
    assert (M.pair_outcomes(nudged, pl) == 0.5).all()
    assert (M.pair_outcomes(pl, nudged) == 0.5).all()
    real = pl + 1e-4 * np.abs(pl) + 1e-30
    assert (M.pair_outcomes(real, pl) == 1.0).all() and (M.pair_outcomes(pl, real) == 0.0).all()
    # infinities: equal ones tie, NaN never wins
    inf, nan = np.inf, np.nan
    out = M.pair_outcomes(np.array([inf, inf, nan, 1.0]), np.array([inf, 1.0, 1.0, nan]))
    assert out.tolist() == [0.5, 1.0, 0.0, 0.0]


def test_sum_rule_cancels_cue_rarity():
    # a "defection is rare" scorer: D outcomes score 1, C outcomes 0, whatever the history.
    # quadruplet sides: {trust_D, provoked_C} vs {trust_C, provoked_D}
    rare = M.sum_rule(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert M.paired_accuracy(*rare) == 0.5
    # a contingency model: betrayal 2, provoked_C 2, lawful outcomes 0.5 -> the sum passes
    contingent = M.sum_rule(np.array([[2.0, 2.0]]), np.array([[0.5, 0.5]]))
    assert [s.tolist() for s in contingent] == [[4.0], [1.0]]
    assert M.paired_accuracy(*contingent) == 1.0


def test_auroc_known_values_and_ties():
    # the textbook example (e.g. scikit-learn's roc_auc_score docs): 0.75
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    assert M.auroc(scores, np.array([False, False, True, True])) == pytest.approx(0.75)
    assert M.auroc(np.ones(4), np.array([True, False, True, False])) == 0.5
    assert M.auroc(np.array([1.0, 2.0]), np.array([False, True])) == 1.0
    assert np.isnan(M.auroc(np.ones(3), np.ones(3, bool)))


def test_effect_sizes_and_wilcoxon():
    assert M.paired_dz(np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)
    assert M.paired_dz(np.zeros(4)) == 0.0
    assert M.paired_dz(np.ones(4)) == np.inf
    assert M.relative_surprise(np.array([3.0, 1.0]), np.array([1.0, 1.0])) == pytest.approx(0.25)
    assert M.relative_surprise(np.array([0.0]), np.array([0.0])) == 0.0
    assert M.wilcoxon_p(np.zeros(5)) == 1.0
    assert M.wilcoxon_p(np.arange(1.0, 21.0)) < 1e-4


def test_bootstrap_cis():
    rng = np.random.default_rng(0)
    x = rng.random(200)
    lo, hi = M.bootstrap_ci(x, level=0.95, resamples=1000, seed=1)
    assert lo < x.mean() < hi and hi - lo < 0.2
    assert M.bootstrap_ci(x, resamples=500, seed=3) == M.bootstrap_ci(x, resamples=500, seed=3)
    assert M.bootstrap_ci(np.full(5, 0.5)) == (0.5, 0.5)
    # seeds: one seed falls back to items; seeds that disagree widen the interval
    assert M.seed_bootstrap_ci([x], resamples=500, seed=3) == M.bootstrap_ci(
        x, resamples=500, seed=3
    )
    apart = M.seed_bootstrap_ci([x * 0.1, x * 0.1 + 0.9], resamples=1000, seed=1)
    pooled = M.bootstrap_ci(np.concatenate([x * 0.1, x * 0.1 + 0.9]), resamples=1000, seed=1)
    assert apart[1] - apart[0] > 3 * (pooled[1] - pooled[0])


def test_spearman_chance_band_time_lock():
    assert M.spearman(np.arange(5.0), np.arange(5.0) ** 3)[0] == pytest.approx(1.0)
    assert np.isnan(M.spearman(np.ones(5), np.arange(5.0))[0])
    # the violation carries rho over all items; among the lawful ones the ranks are reversed
    scores, ideal = np.array([3.0, 2.0, 1.0, 9.0]), np.array([1.0, 2.0, 3.0, M.VIOLATION])
    assert M.spearman(scores, ideal)[0] == pytest.approx(0.2)
    assert M.spearman_lawful(scores, ideal)[0] == pytest.approx(-1.0)
    assert M.chance_band(np.arange(11.0), 0.9) == pytest.approx((0.5, 9.5))
    diff = np.zeros((3, 7))  # before = 3: frames -3..3
    diff[:, 5] = [1.0, 2.0, 3.0]
    assert M.time_lock(diff, 3, 1e-3) == {"pre_max_abs": 0.0, "locked": True, "peak_latency": 2}
    diff[0, 1] = 0.1
    assert M.time_lock(diff, 3, 1e-3)["locked"] is False


def test_pass_rule_and_betrayal_verdict():
    assert M.passes(0.8, 0.6, 0.7) and not M.passes(0.8, 0.45, 0.7)
    assert not M.passes(0.65, 0.55, 0.7) and M.passes(0.65, 0.55, None)
    ok = M.betrayal_verdict({"M1": True, "R": True, "Q": True, "M2": False})
    assert ok == {"claimed": True, "tests": {"M1": True, "R": True, "Q": True}}
    assert not M.betrayal_verdict({"M1": True, "R": False, "Q": True})["claimed"]
    assert not M.betrayal_verdict({"M1": True, "Q": True})["claimed"]  # R missing
    assert M.selectivity(np.array([2.0, 1.0]), np.array([1.0, 1.0])) == 0.75


def test_event_scores_windows_and_alignment():
    curves = np.arange(20.0).reshape(2, 10)  # (I, T)
    ts = np.array([2, 5])
    assert event_scores(curves, ts, 2, "max").tolist() == [4.0, 17.0]
    assert event_scores(curves, ts, 2, "mean").tolist() == [3.0, 16.0]
    al = aligned(curves, ts, 3, 5)
    assert al.shape == (2, 9) and np.isnan(al[0, 0]) and al[0, 3] == 2.0 and np.isnan(al[1, -1])
    with pytest.raises(ProbeError, match="leaves the episode"):
        check_windows(ts, 10, 5, 1, "x")
    with pytest.raises(ProbeError, match="first H"):
        check_windows(ts, 10, 2, 3, "x")


def test_voe_config_loads_and_rejects_typos(tmp_path):
    cfg = load_config("experiments/voe.yaml")
    assert cfg.primary in cfg.aggregators and cfg.chance_networks >= 10
    raw = yaml.safe_load(open("experiments/voe.yaml"))
    raw["windwo"] = 3
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ProbeError, match="windwo"):
        load_config(tmp_path / "bad.yaml")


def test_baseline_detectors_on_hand_made_histories():
    # one episode, agents 0..2; A=1 meets B=2 at frames 1, 2, 3; executed 1 C, 0 D, -1 none
    partner = np.array([[[-1, -1, -1], [-1, 2, 1], [-1, 2, 1], [-1, 2, 1]]])
    executed = np.array([[[-1, -1, -1], [-1, 1, 0], [-1, 0, 1], [-1, 1, 1]]])
    assert baselines.defection_count(executed)[0].tolist() == [0, 1, 1, 0]
    # frame 1: tit-for-tat expects C from both -> B's D breaks it; frame 2: A copies B's D
    # (expected), B copies A's C (expected); frame 3: A expected C (B's last) ok, B expected D
    assert baselines.last_move_errors(executed, partner)[0].tolist() == [0, 1, 0, 1]
    px = np.zeros((1, 3, 2, 2, 3), np.uint8)
    px[0, 1, 0, 0] = 3  # 3 channels changed by 3 -> sqrt(27)
    out = baselines.pixel_difference(px)[0]
    assert (
        np.isnan(out[0]) and out[1] == pytest.approx(27**0.5) and out[2] == pytest.approx(27**0.5)
    )


def test_ridge_matches_least_squares_and_logistic_separates():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    Y = X @ rng.normal(size=(5, 2)) + 0.3
    fit = linear.Ridge(X, Y).fit(1e-12)
    A = np.c_[X, np.ones(len(X))]
    ref = A @ np.linalg.lstsq(A, Y, rcond=None)[0]
    assert np.allclose(fit.predict(X), ref, atol=1e-6)
    assert linear.r2(Y, fit.predict(X)) == pytest.approx(1.0)
    y = (X[:, :1] > 0).astype(int)  # (n, 1) one output, 2 classes
    train = np.arange(300) < 200
    res = linear.logistic_probe(X, y, train, 2, 1e-4)
    assert res["accuracy"] > 0.95 and 0.3 < res["majority"] < 0.7


def test_cue_targets_are_per_agent_c_and_d_indicators():
    cues = np.array([[[0, 1, 2], [2, 0, 0]]])  # (E=1, T=2, N=3): none / C / D codes
    out = linear.targets({"cues": cues})["cues"]  # (1, 2, 2N): C flags, then D flags
    assert out.shape == (1, 2, 6)
    assert out[0, 0].tolist() == [0, 1, 0, 0, 0, 1] and out[0, 1].tolist() == [0, 0, 0, 1, 0, 0]
    assert linear.CUE_C == render.CUE_C and linear.CUE_D == render.CUE_D


def test_violation_sentinel_is_the_item_generators():
    from data_gen.physics_items import IDEAL_SURPRISAL_VIOLATION
    from data_gen.polis_items import IMPOSSIBLE

    assert M.VIOLATION == IDEAL_SURPRISAL_VIOLATION == IMPOSSIBLE


def test_dose_slope_finds_a_rise_and_not_a_flat_line():
    rng = np.random.default_rng(0)
    k = np.repeat([1, 2, 4, 8], 100)
    rising = M.dose_slope(k, 0.5 * np.log2(k) + rng.normal(0, 0.5, len(k)), seed=1)
    assert abs(rising["slope"] - 0.5) < 0.1 and rising["ci"][0] > 0
    assert rising["K"] == [1, 2, 4, 8] and rising["n"] == [100] * 4
    flat = M.dose_slope(k, rng.normal(0, 0.5, len(k)), seed=1)
    assert flat["ci"][0] < 0 < flat["ci"][1]
    one = M.dose_slope(np.ones(5, int), np.arange(5.0))
    assert np.isnan(one["slope"])  # one dose: no slope


def test_dose_slope_stores_its_rows_by_k_whatever_their_order():
    k = np.array([8, 1, 4, 2, 1, 8])
    d = M.dose_slope(k, np.array([-0.8, 0.3, 0.4, 0.2, 0.15, -0.85]))  # not sorted by value
    assert d["K"] == [1, 2, 4, 8] and d["n"] == [2, 1, 1, 2]
    assert d["diff"] == [0.3, 0.15, 0.2, 0.4, -0.8, -0.85]  # split by n: each K's rows, in order
    again = M.dose_slope(np.sort(k), np.array(d["diff"]))
    assert again["slope"] == pytest.approx(d["slope"])  # the same rows, the same slope


def test_the_slope_ci_over_seeds_covers_both_sources_of_variance():
    rng = np.random.default_rng(0)
    k = np.repeat([1, 2, 4, 8], 200)

    def seed(true_slope):  # one seed's dose_slope over 800 noisy rows
        return M.dose_slope(k, true_slope * np.log2(k) + rng.normal(0, 0.5, len(k)), seed=1)

    rising = [seed(0.1) for _ in range(3)]
    lo, hi = M.seed_bootstrap_slope_ci(rising, seed=2)
    assert 0 < lo < 0.1 < hi
    # three identical seeds: resampling seeds alone would give a CI of width 0; the groups'
    # resampling keeps it about as wide as one seed's own CI over 3 (the mean of 3 draws)
    one = rising[0]
    lo, hi = M.seed_bootstrap_slope_ci([one] * 3, seed=2)
    assert hi - lo > 0.3 * (one["ci"][1] - one["ci"][0])
    # seeds that disagree (one falls, two rise): each seed's own CI may exclude 0, the mean's
    # CI over seeds does not
    mixed = [seed(0.1), seed(0.1), seed(-0.15)]
    assert sum(d["ci"][0] > 0 for d in mixed) == 2
    lo, hi = M.seed_bootstrap_slope_ci(mixed, seed=2)
    assert lo < 0 < hi
    # one seed: its own CI; seeds probed before the rows were stored are left out
    assert M.seed_bootstrap_slope_ci([rising[0]]) == tuple(rising[0]["ci"])
    old = {key: v for key, v in rising[1].items() if key != "diff"}
    assert M.seed_bootstrap_slope_ci([old, rising[0]]) == tuple(rising[0]["ci"])
    assert all(np.isnan(M.seed_bootstrap_slope_ci([old, None])))


def test_history_effect_is_zero_for_swapped_outcomes():
    m2 = np.array([1.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(M.history_effect(m2, 1 - m2), 0.0)
    np.testing.assert_array_equal(M.history_effect(np.ones(3), np.ones(3)), 1.0)


def test_the_report_gives_the_slope_a_ci_over_seeds_where_the_probes_store_the_rows():
    from pwm.probes.report import summarise

    rng = np.random.default_rng(3)
    k = np.repeat([1, 2, 4, 8], 100)
    cfg = {"primary": "max", "ci_level": 0.95, "bootstrap_resamples": 500, "seed": 0,
           "headline": {}, "betrayal_tests": ["M1"]}  # fmt: skip

    def member(slope, rows=True):
        d = M.dose_slope(k, slope * np.log2(k) + rng.normal(0, 0.3, len(k)), seed=1)
        if not rows:  # a probe made before the rows were stored
            d.pop("diff")
        return {"config": cfg}, {"world": "polis", "scorers": {"model": {
            "comparisons": {}, "dose_slope": {"max": d}}}}  # fmt: skip

    s = summarise([member(0.1), member(0.12), member(0.08)])["dose_slope"]
    assert s["mean"] == pytest.approx(np.mean(s["per_seed"]))
    assert s["seeds_ci_above_0"] == 3 and 0 < s["ci"][0] < s["mean"] < s["ci"][1]
    s = summarise([member(0.1), member(0.1, rows=False)])["dose_slope"]
    assert "ci" not in s  # a CI over some of the seeds would be a CI of another mean
