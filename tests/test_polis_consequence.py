"""`pwm items polis --consequence`: counterfactual pairs (the ego cooperates / defects at one
natural exchange) that differ only from the ego's action on, show the simulator's consequences
(the partner's trust collapses, the partner keeps its distance), are deterministic for any number
of workers, and feed `pwm probe --consequence` end to end on a debug-trained Polis checkpoint."""

import json
import sys

import numpy as np
import pytest
import yaml
from faults import run_pwm

from data_gen import agents, cli, polis
from data_gen.polis_config import PolisConfig
from data_gen.polis_consequence import CONSEQUENCE_FILE
from pwm.cli import main as pwm_main
from pwm.data.format import open_dataset
from pwm.probes import consequence as probe
from pwm.probes.config import load_config

WORLD = PolisConfig()  # the CLI's world defaults
PAIRS = 40  # two shards of 32 and 8 pairs
HORIZON = load_config("experiments/voe.yaml").consequence_horizon
BASE = ["items", "polis", "--consequence", "--items", str(PAIRS), "--image-size", "32"]


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("consequence")
    assert cli.main([*BASE, "--out", str(root / "w1")]) == 0
    assert cli.main([*BASE, "--out", str(root / "w2"), "--workers", "2"]) == 0
    return root


@pytest.fixture(scope="module")
def cf(sets):
    """(dataset, pairs (P, 4) rows cooperate, defect, t_event, partner, arrays)."""
    ds = open_dataset(sets / "w1")
    rows = probe.read_pairs(ds, {"world": "polis", "observation": "pixels", "obs_size": 32,
                                 "action_dim": 3})  # fmt: skip
    keys = ("pixels", "state", "actions", "positions", "velocities", "trust", "partner",
            "executed", "event", "cues")  # fmt: skip
    return ds, rows, {k: ds.array(k) for k in keys}


def test_format_is_what_the_probe_reads(sets, cf):
    ds, rows, _ = cf
    assert CONSEQUENCE_FILE == probe.CONSEQUENCE_FILE
    assert ds.world == "polis" and ds.manifest["kind"] == "consequence"
    assert ds.num_episodes == 2 * PAIRS == len(rows) * 2
    assert CONSEQUENCE_FILE in ds.manifest["extra_files"]
    doc = ds.read_json(CONSEQUENCE_FILE)
    assert set(doc["pairs"][0]) == {"cooperate", "defect", "t_event", "partner", "natural"}
    np.testing.assert_array_equal(rows[:, :2], np.arange(2 * PAIRS).reshape(-1, 2))
    t = rows[0, 2]
    assert np.all(rows[:, 2] == t) and t >= 12 and ds.shape("actions")[0] - t >= HORIZON
    assert np.all((rows[:, 3] >= 1) & (rows[:, 3] < WORLD.n_agents))
    assert {p["natural"] for p in doc["pairs"]} <= {"C", "D"}


def test_episodes_of_a_pair_are_identical_before_the_event(cf):
    _, rows, a = cf
    for c, d, t, p in rows:
        for k in ("pixels", "state", "positions", "velocities", "trust", "partner", "cues"):
            assert np.array_equal(a[k][c, :t], a[k][d, :t]), k
        assert np.array_equal(a["actions"][c, : t - 1], a["actions"][d, : t - 1])
        assert np.array_equal(a["actions"][c, :, :2], a["actions"][d, :, :2])  # recorded moves
        assert a["actions"][c, t - 1, 2] == 1 and a["actions"][d, t - 1, 2] == -1  # C / D
        assert a["partner"][c, t, 0] == a["partner"][d, t, 0] == p  # the same meeting
        assert a["executed"][c, t, 0] == agents.C and a["executed"][d, t, 0] == agents.D
        assert a["event"][d, t, 0] == agents.UNPROVOKED  # a betrayal, not a lawful defection
        assert not np.array_equal(a["pixels"][c, t], a["pixels"][d, t])  # the cue differs at t


def test_partner_trust_in_the_ego_collapses_after_a_defection(cf):
    _, rows, a = cf
    c, d, t, p = rows.T
    before = a["trust"][c, t - 1, p, 0]
    after_c, after_d = a["trust"][c, t, p, 0], a["trust"][d, t, p, 0]
    assert np.all(after_d < after_c)
    np.testing.assert_allclose(after_d, before * (1 - WORLD.collapse), rtol=1e-6)  # the law
    late_c, late_d = a["trust"][c, t + HORIZON - 1, p, 0], a["trust"][d, t + HORIZON - 1, p, 0]
    drop = after_d - after_c
    print(
        f"trust drop at t: {drop.mean():.3f}; at t + {HORIZON - 1}: {(late_d - late_c).mean():.3f}"
    )
    assert np.mean(late_d - late_c) < -0.2  # still lower at the end of the probe's horizon


def test_partner_keeps_farther_from_a_defector(cf):
    _, rows, a = cf
    c, d, t, p = rows.T
    steps = t[:, None] + np.arange(HORIZON)  # (P, S) the probe's frames t .. t + S - 1

    def distance(e):  # (P, S) partner's distance from the ego
        pos = a["positions"][e[:, None], steps]  # (P, S, N, 2)
        return np.linalg.norm(pos[np.arange(len(e)), :, p] - pos[:, :, 0], axis=-1)

    gap = distance(d) - distance(c)  # (P, S)
    print(f"distance gap (defect - cooperate) over the horizon: {np.round(gap.mean(0), 4)}")
    # positions react to trust after react_delay rounds, so they agree until t + delay * L ...
    still = WORLD.react_delay * WORLD.round_len
    assert np.all(gap[:, : still + 1] == 0)
    # ... then the betrayed partner (repelled by whom it distrusts) ostracises the ego: three
    # rounds on (frame t + 17, the end of the first probe's horizon) in most pairs, and on average
    # over the whole horizon, while the two branches drift apart in other ways too
    assert gap[:, 17].mean() > 0.01 and (gap[:, 17] > 0).mean() > 0.8
    assert gap[:, still + 1 :].mean() > 0.02 and gap[:, -1].mean() > gap[:, 17].mean()


def test_replaying_the_recorded_ego_moves_reproduces_the_natural_run():
    cfg = PolisConfig(frames=48, image_size=0)
    sc = polis.draw_scenario(cfg, np.random.default_rng(1), 16)
    natural = polis.run(cfg, sc)
    script = polis.Script.natural(cfg, 16)
    script.ego_move = natural["actions"][:, :, :2].copy()
    replay = polis.run(cfg, sc, script)
    for k, v in natural.items():
        assert np.array_equal(v, replay[k]), k


def test_same_seed_same_bytes_with_one_and_two_workers(sets):
    one, two = open_dataset(sets / "w1"), open_dataset(sets / "w2")
    assert len(one.manifest["shards"]) == 2
    assert one.manifest["shards"] == two.manifest["shards"]
    assert (sets / "w1" / CONSEQUENCE_FILE).read_bytes() == (
        sets / "w2" / CONSEQUENCE_FILE
    ).read_bytes()


def test_bad_options_fail_with_one_line(tmp_path, capsys):
    out = tmp_path / "never"
    assert cli.main([*BASE, "--out", str(out), "--after", "300"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--search-frames 241 leaves no exchange frame" in err[0]
    assert not out.exists()


def test_probe_consequence_end_to_end_on_a_polis_checkpoint(sets, tmp_path, monkeypatch, capsys):
    common = ["--image-size", "32", "--seed", "0"]
    data, items = tmp_path / "polis", tmp_path / "items"
    gen = ["generate", "polis", "--out", str(data), "--episodes", "16", "--frames", "24"]
    assert cli.main([*gen, *common]) == 0
    assert cli.main(["items", "polis", "--out", str(items), "--items", "2", *common]) == 0
    monkeypatch.setattr(sys, "argv", ["pwm"])  # LightningCLI rewrites sys.argv
    fit = ["fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml",
           f"--data.path={data}", "--trainer.max_steps=3", "--trainer.limit_val_batches=1",
           f"--trainer.default_root_dir={tmp_path}",
           f"--trainer.logger.init_args.save_dir={tmp_path}"]  # fmt: skip
    assert pwm_main(fit) == 0
    ckpt = next(tmp_path.rglob("last.ckpt"))
    cfg = yaml.safe_load(open("experiments/voe.yaml"))
    cfg |= {"chance_networks": 0, "bootstrap_resamples": 100}
    (tmp_path / "voe.yaml").write_text(yaml.safe_dump(cfg))
    argv = ["probe", "--ckpt", str(ckpt), "--items", str(items), "--consequence",
            str(sets / "w1"), "--out", str(tmp_path / "run"),
            "--config", str(tmp_path / "voe.yaml")]  # fmt: skip
    assert pwm_main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    ideal = metrics["items"][0]["scorers"]["ideal_observer"]
    for key in ("spearman_ideal", "spearman_ideal_lawful"):  # lawful: graded surprisals only
        assert ideal[key]["max"]["rho"] == pytest.approx(1.0)
    res = metrics["consequence"]
    assert set(res) == {"model", "random_init"}
    model = res["model"]
    assert model["pairs"] == PAIRS and model["horizon"] == HORIZON
    for target in probe.TARGETS:
        block = model[target]
        assert len(block["true_effect"]) == HORIZON == len(block["predicted_effect"])
    assert model["trust_to_ego"]["true_effect"][0] < -0.2  # the simulator's collapse
    assert model["distance_to_ego"]["true_effect"][-1] > 0  # and ostracism
    assert "## Consequence probe" in (tmp_path / "run" / "metrics.md").read_text()
    # no room for the horizon in these episodes: refused up front, before the VoE probe runs
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(cfg | {"consequence_horizon": 1000}))
    late = tmp_path / "late"
    argv = ["probe", "--ckpt", str(ckpt), "--items", str(items), "--consequence",
            str(sets / "w1"), "--out", str(late),
            "--config", str(tmp_path / "long.yaml")]  # fmt: skip
    code, err = run_pwm(argv, capsys, monkeypatch)
    assert code == 2 and len(err) == 1 and "lower consequence_horizon" in err[0], err
    assert not late.exists()
