"""Polis's payoffs, its empirical game (data_gen/polis_game.py), the analysis CLI
(experiments/evolution.py) and the `evolved` population."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from data_gen import cli, polis, polis_game
from data_gen.agents import COOPERATOR, DEFECTOR, DISPOSITIONS
from data_gen.polis_config import PolisConfig, evolved_mixes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments import evolution  # noqa: E402

STILL = dict(social=0.0, wander=0.0, contact=0.0, tremble=0.0, noisy_tremble=0.0, ego_explore=0.0)


@pytest.mark.parametrize(
    "payoffs, message",
    [
        ({"payoff_s": -1.0}, "--payoff-s must be a finite number >= 0"),
        ({"payoff_t": math.inf}, "--payoff-t must be a finite number >= 0"),
        ({"payoff_r": math.nan}, "--payoff-r must be a finite number >= 0"),
        ({"payoff_p": 4.0}, "T > R > P > S"),
        ({"payoff_t": 7.0}, "2R > T + S"),
    ],
)
def test_payoffs_that_are_no_dilemma_are_refused(payoffs, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        PolisConfig(**payoffs)


@pytest.mark.parametrize("flags", [["--payoff-t", "-1"], ["--payoff-s", "nan"]])
def test_generate_refuses_bad_payoffs_with_one_line(tmp_path, capsys, flags):
    out = tmp_path / "never"
    assert cli.main(["generate", "polis", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert "error: --payoff-" in err and "\n" not in err and not out.exists()


def test_earnings_follow_the_payoff_table():
    """A cooperator and a defector standing side by side meet every round: S and T each."""
    cfg = PolisConfig(n_agents=2, frames=6 * 5 + 1, image_size=0, payoff_t=4.0, payoff_s=0.5,
                      **STILL)  # fmt: skip
    sc = polis.draw_scenario(cfg, np.random.default_rng(0), 1)
    sc.pos0 = np.array([[[0.4, 0.5], [0.55, 0.5]]])
    sc.dispositions = np.array([[COOPERATOR, DEFECTOR]], np.int8)
    earn = polis_game.earnings(cfg, polis.run(cfg, sc))  # (1, 2, 2)
    np.testing.assert_allclose(earn[0], [[0.0, 5 * 0.5], [5 * 4.0, 0.0]])


def test_game_is_deterministic_and_shaped():
    base = PolisConfig(frames=25)
    one = polis_game.measure_game(base, np.random.default_rng(3), 40, batch=16)
    two = polis_game.measure_game(base, np.random.default_rng(3), 40, batch=16)
    assert one.per_round.sums.shape == (40, 6, 6)
    np.testing.assert_array_equal(one.per_round.sums, two.per_round.sums)
    assert (one.per_round.halfwidth >= 0).all() and np.isfinite(one.per_round.mean).all()
    inv = polis_game.measure_invasion(base, (1, 0, 0, 0, 0, 0), np.random.default_rng(0), 20,
                                      mutants=(DEFECTOR,))  # fmt: skip
    assert inv.fitness.shape == (2,) and np.isfinite(inv.fitness).all()  # defector, control
    np.testing.assert_allclose(inv.fitness, inv.mutant - inv.resident)


SMALL = ["--episodes", "40", "--invasion-episodes", "8", "--trembles", "0.02",
         "--witness-radii", "0.3", "--basin-samples", "5", "--laws", "justice",
         "--population-size", "6"]  # fmt: skip


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--start", "saint=1"], "unknown disposition"),
        (["--payoff-s", "-1"], "--payoff-s must be a finite number >= 0"),
        (["--payoff-t", "inf"], "--payoff-t must be a finite number >= 0"),
        (["--mutation", "1.5"], "--mutation must be in [0, 1]"),
        (["--mutation", "-0.1"], "--mutation must be in [0, 1]"),
        (["--population-size", "5"], "--population-size must be >= the number of types"),
        (["--laws", "anarchy"], "unknown law"),
        (["--trembles", "0.02,2"], "--tremble"),
    ],
)
def test_evolution_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, flags, message):
    out = tmp_path / "never"
    assert evolution.main([*SMALL, "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evolution: error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_evolution_end_to_end_same_seed_same_bytes(tmp_path):
    for name in ("a", "b"):
        assert evolution.main([*SMALL, "--out", str(tmp_path / name)]) == 0
    files = {"results.json", "evolved.json", "REPORT.md", "game.png", "replicator.png",
             "invasion.png", "moran.png"}  # fmt: skip
    assert files <= {p.name for p in (tmp_path / "a").iterdir()}
    evolved = (tmp_path / "a/evolved.json").read_bytes()
    assert evolved == (tmp_path / "b/evolved.json").read_bytes()
    mixes = evolved_mixes(tmp_path / "a/evolved.json")
    assert set(mixes) == {"justice"} and abs(sum(mixes["justice"]) - 1) < 1e-9
    doc = json.loads((tmp_path / "a/results.json").read_text())
    assert doc["provenance"]["command"].startswith("python experiments/evolution.py")


def test_evolved_population_reads_the_stored_mix(tmp_path):
    path = tmp_path / "evolved.json"
    weights = [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]
    path.write_text(json.dumps({"dispositions": list(DISPOSITIONS),
                                "laws": {"justice": {"weights": weights}}}))  # fmt: skip
    assert evolved_mixes(path)["justice"] == tuple(weights)
    with pytest.raises(ValueError, match="evolution.py"):
        evolved_mixes(tmp_path / "missing.json")


def test_generate_an_evolved_society_same_seed_same_bytes(tmp_path, capsys):
    from pwm.data.format import open_dataset

    base = ["generate", "polis", "--episodes", "4", "--frames", "13", "--image-size", "16",
            "--population", "evolved", "--law", "reciprocity"]  # fmt: skip
    for name in ("a", "b"):
        assert cli.main([*base, "--out", str(tmp_path / name)]) == 0
    one, two = open_dataset(tmp_path / "a"), open_dataset(tmp_path / "b")
    assert one.manifest["shards"] == two.manifest["shards"]
    config = one.manifest["config"]
    assert config["population"] == "evolved" and config["payoff_t"] == 5.0
    assert tuple(config["dispositions"]) == evolved_mixes()["reciprocity"]
    assert PolisConfig(population="evolved").weights == {"evolved": evolved_mixes()["justice"]}
