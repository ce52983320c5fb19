"""The consequence probe (DESIGN 4.6) on a counterfactual Polis set built here.

Polis does not (yet) write counterfactual pairs, so `counterfactual_set` builds the set the probe
reads (see pwm/probes/consequence.py for the contract) from the world's own simulator: natural
runs, then each run replayed twice with the ego's action at its first exchange forced to C and
to D. It is the reference for a future `pwm items polis` option.
"""

import json

import numpy as np
import pytest

from data_gen import polis
from data_gen.agents import C, D
from data_gen.polis_config import PolisConfig
from pwm.checkpoint import LoadedModel
from pwm.data.format import finalize, open_dataset, write_shard
from pwm.probes.checkpoint import random_model
from pwm.probes.config import ProbeError, load_config
from pwm.probes.consequence import CONSEQUENCE_FILE, consequence_probe


def counterfactual_set(out, episodes=48, frames=72, first=6, last=36, seed=0):
    """Pairs (ego C, ego D) at the ego's first exchange in frames [first, last]."""
    cfg = PolisConfig(frames=frames, image_size=32)
    sc = polis.draw_scenario(cfg, np.random.default_rng(seed), episodes)
    natural = polis.run(cfg, sc)
    paired = natural["partner"][:, :, 0] >= 0  # (B, T) ego in an exchange at frame t
    paired[:, :first] = paired[:, last + 1 :] = False
    keep = np.flatnonzero(paired.any(1))
    t = paired[keep].argmax(1)  # (P,) first exchange frame of the ego
    script = polis.Script.natural(cfg, 2 * len(keep))
    rows = np.arange(len(keep))
    script.force[t // cfg.round_len - 1, 2 * rows, 0] = C
    script.force[t // cfg.round_len - 1, 2 * rows + 1, 0] = D
    truth = polis.run(cfg, sc.take(np.repeat(keep, 2)), script)
    keys = ("actions", "positions", "trust", "cues", "partner", "executed")
    arrays = {k: truth[k] for k in keys}
    arrays |= {"pixels": polis.pixels(cfg, truth), "state": polis.observe(truth)}
    out.mkdir(parents=True)
    write_shard(out, 0, arrays)
    partner = natural["partner"][keep, t, 0]
    pairs = [
        {
            "cooperate": 2 * int(i),
            "defect": 2 * int(i) + 1,
            "t_event": int(t[i]),
            "partner": int(partner[i]),
        }
        for i in rows
    ]
    (out / CONSEQUENCE_FILE).write_text(json.dumps({"pairs": pairs}))
    finalize(out, 1, {"world": "polis", "kind": "consequence"}, extra_files=[CONSEQUENCE_FILE])
    return open_dataset(out)


@pytest.fixture(scope="module")
def pairs_set(tmp_path_factory):
    return counterfactual_set(tmp_path_factory.mktemp("cf") / "set")


def polis_model() -> LoadedModel:
    """A random pixel network of a Polis model's hyperparameters (seed 0)."""
    hparams = {
        "observation": "pixels",
        "obs_size": 32,
        "action_dim": 3,
        "window": 8,
        "history": 4,
        "world": "polis",
        "embed_dim": 32,
        "projector_hidden": 64,
        "encoder": {"patch_size": 8, "width": 32, "depth": 1, "heads": 2},
        "predictor": {"width": 32, "depth": 1, "heads": 2, "head_dim": 16, "mlp_dim": 64},
    }
    return random_model(hparams, seed=0)


def test_counterfactual_pairs_differ_only_from_the_ego_action(pairs_set):
    px, act = pairs_set.array("pixels"), pairs_set.array("actions")
    rows = pairs_set.read_json(CONSEQUENCE_FILE)["pairs"]
    assert len(rows) >= 12
    for r in rows:
        c, d, t = r["cooperate"], r["defect"], r["t_event"]
        assert np.array_equal(px[c, :t], px[d, :t])  # shared prefix
        assert act[c, t - 1, 2] == 1 and act[d, t - 1, 2] == -1  # the ego's C / D
        assert not np.array_equal(px[c, t], px[d, t])  # the cue differs at t


def test_consequence_probe_reports_true_and_predicted_effects(pairs_set):
    cfg = load_config("experiments/voe.yaml")
    res = consequence_probe(polis_model(), pairs_set, 4, cfg)
    trust = res["trust_to_ego"]
    assert len(trust["true_effect"]) == cfg.consequence_horizon == len(trust["predicted_effect"])
    # the simulator's law: defecting on a partner lowers its trust in the ego (never raises it)
    assert trust["true_effect"][-1] < -0.05
    assert np.allclose(
        np.array(trust["gap"]), np.array(trust["predicted_effect"]) - np.array(trust["true_effect"])
    )
    assert res["test_pairs"] >= 3


@pytest.fixture(scope="module")
def late_pairs_set(tmp_path_factory):  # the ego's exchange after frame 24: 4 rounds of context
    return counterfactual_set(tmp_path_factory.mktemp("cf") / "late", first=24)


def test_consequence_probe_steps_a_frame_skip_model_by_rounds(late_pairs_set):
    cfg = load_config("experiments/voe.yaml")
    hparams = {
        "observation": "state",
        "obs_size": 36,
        "action_dim": 18,
        "window": 5,
        "history": 4,
        "frame_skip": 6,
        "world": "polis",
        "embed_dim": 12,
        "objects": 6,
        "projector_hidden": 16,
        "target": "stopgrad",
        "encoder": {"width": 8, "depth": 1},
        "predictor": {"width": 16, "depth": 1, "heads": 2, "head_dim": 8, "mlp_dim": 32},
    }
    res = consequence_probe(random_model(hparams, seed=0), late_pairs_set, 4, cfg)
    steps = cfg.consequence_horizon // 6
    assert res["steps"] == steps and res["frame_skip"] == 6
    for name in ("distance_to_ego", "trust_to_ego", "partner_defects"):
        b = res[name]
        assert len(b["true_effect"]) == steps == len(b["predicted_effect"])
        # one-step predictions from real frames: step 0 has the rollout's context, later steps
        # see the branch's real frames where the rollout sees its own predictions
        assert len(b["one_step_effect"]) == steps
        assert b["one_step_effect"][0] == pytest.approx(b["predicted_effect"][0], abs=1e-6)
        assert not np.allclose(b["one_step_effect"][1:], b["predicted_effect"][1:])
        mean_true = np.mean(b["true_effect"])
        assert b["one_step_ratio"] == pytest.approx(np.mean(b["one_step_effect"]) / mean_true)
    # the true effects are read at the model's steps t, t + 6, ...: the collapse from step 0 on
    assert res["trust_to_ego"]["true_effect"][0] < -0.05
    assert res["distance_to_ego"]["true_effect"][0] == 0  # nobody has moved differently yet
    with pytest.raises(ProbeError, match="fewer than 4 pairs leave room for H = 60 frames"):
        consequence_probe(random_model(hparams | {"history": 10, "window": 11}, seed=0),
                          late_pairs_set, 10, cfg)  # fmt: skip


def test_consequence_probe_needs_the_counterfactual_file(tmp_path):
    out = tmp_path / "plain"
    out.mkdir()
    write_shard(out, 0, {"actions": np.zeros((2, 5, 3), np.float32)})
    finalize(out, 1, {"world": "polis"})
    with pytest.raises(ProbeError, match="not a counterfactual set"):
        consequence_probe(polis_model(), open_dataset(out), 4, load_config("experiments/voe.yaml"))


def test_consequence_steps_prints_the_probes_effects_per_step(pairs_set, tmp_path, capsys):
    import sys

    import torch

    sys.path.insert(0, "experiments")
    import consequence_steps

    m = polis_model()
    ckpt = tmp_path / "polis.ckpt"
    torch.save({"hyper_parameters": dict(m.hparams),
                "state_dict": {f"model.{k}": v for k, v in m.model.state_dict().items()}},
               ckpt)  # fmt: skip
    out = tmp_path / "steps.md"
    consequence_steps.main(["--set", str(pairs_set.root), str(ckpt), "--out", str(out)])
    res = consequence_probe(m, pairs_set, 4, load_config("experiments/voe.yaml"))
    text = out.read_text()
    title, command, tables = text.split("\n\n", 2)
    assert title == "# The consequence probe per step (experiments/consequence_steps.py)"
    assert command.startswith("Command: `python experiments/consequence_steps.py --set ")
    assert "; commit " in command and tables in capsys.readouterr().out
    row = next(r for r in text.splitlines() if r.startswith("| trust_to_ego | one-step |"))
    cells = row.strip("| ").split(" | ")[2:-1]
    assert [float(c) for c in cells] == pytest.approx(res["trust_to_ego"]["one_step_effect"],
                                                      abs=5e-4)  # fmt: skip
    bad = tmp_path / "bad.md"
    with pytest.raises(SystemExit) as exit_:
        consequence_steps.main(["--set", str(pairs_set.root), str(ckpt), "missing.ckpt",
                                "--out", str(bad)])  # fmt: skip
    assert exit_.value.code == 2 and not bad.exists()
    assert capsys.readouterr().err.strip() == (
        "consequence_steps.py: error: checkpoint missing.ckpt not found"
    )
