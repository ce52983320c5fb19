"""Event weights (issue 27): a past-only loss weight after an agent suffered a defection.

`data.event_weight` = a gives each training sample a weight (L, n): 1 + a where the agent's
exchange partner executed D on it at one of the `data.event_steps` observed steps before, else 1;
the module trains on the weighted prediction loss. Checked here: the flags against a brute-force
reading of the raw arrays (steps before the window's start included, nothing from the predicted
step or later), the loss (equal weights give the unweighted loss; per-object weights pick their
object's block), validation and unweighted runs untouched, a short `pwm fit` that logs both
losses, and bad options (the one-line errors are in tests/test_bad_inputs.py).
"""

import csv
import math

import numpy as np
import pytest
import torch
import yaml
from faults import run_pwm

from data_gen.agents import C, D
from data_gen.cli import main as data_main
from pwm.data import DatasetError, WorldDataModule, open_dataset
from pwm.data.datamodule import event_weights, suffered_defection
from pwm.losses.prediction import elementwise, weighted_loss
from pwm.module import JEPAModule

ROUND = 6  # Polis round_len: one step per round


@pytest.fixture(scope="module")
def polis(tmp_path_factory):
    """12 Polis episodes of 61 frames (10 rounds) with many defections (hobbesian)."""
    out = tmp_path_factory.mktemp("data") / "polis"
    argv = ["generate", "polis", "--out", str(out), "--episodes", "12", "--frames", "61"]
    argv += ["--image-size", "16", "--population", "hobbesian", "--seed", "0"]
    assert data_main(argv) == 0
    return out


def datamodule(path, **kw) -> WorldDataModule:
    return WorldDataModule(
        str(path), observation="state", window=5, stride=ROUND, frame_skip=ROUND,
        batch_size=4, val_fraction=0.25, **kw,
    )  # fmt: skip


def test_suffered_defection_reads_the_partner_s_executed_action():
    partner = np.array([[1, 0, -1], [2, -1, 0], [-1, -1, -1]], np.int8)
    executed = np.array([[C, D, D], [D, C, C], [D, D, D]], np.int8)
    got = suffered_defection(partner, executed)
    # frame 0: 0's partner 1 played D, 1's partner 0 played C, 2 had no exchange
    # frame 1: 0's partner 2 played C, 2's partner 0 played D; frame 2: nobody paired
    assert got.tolist() == [[True, False, False], [False, False, True], [False, False, False]]


def test_event_weights_look_back_event_steps_steps_of_the_window_only():
    L, n = 6, 2
    suffered = np.zeros((L, n), bool)
    suffered[1, 0] = True  # agent 0 defected on at the window's step 1
    w = event_weights(suffered, steps=2, weight=3.0)
    # steps 2 (one back) and 3 (two back) are weighted; not step 1 itself, not step 4
    assert w[:, 0].tolist() == [1, 1, 4, 4, 1, 1]
    assert w[:, 1].tolist() == [1] * L
    assert w.dtype == np.float32
    # a flag at the window's first step counts for the next steps; nothing before it exists,
    # and a look-back longer than the window is no error
    early = np.zeros((5, n), bool)
    early[0, 1] = True
    w = event_weights(early, steps=3, weight=1.0)
    assert w[:, 1].tolist() == [1, 2, 2, 2, 1] and w[:, 0].tolist() == [1] * 5
    assert event_weights(early, steps=9, weight=1.0)[:, 1].tolist() == [1, 2, 2, 2, 2]


def test_training_samples_carry_the_weights_a_brute_force_reading_gives(polis):
    dm = datamodule(polis, event_weight=2.5, event_steps=3)
    ds = dm._dataset(dm.train_episodes, train=True)
    raw = open_dataset(polis)
    partner, executed = raw.array("partner"), raw.array("executed")  # (E, T, n)
    flagged = 0
    for index in range(len(ds)):
        sample = ds[index]
        episode, start = divmod(index, len(ds.starts))
        e, first = dm.train_episodes[episode], ds.starts[start]
        want = np.ones((5, partner.shape[-1]), np.float32)
        for step in range(5):
            for back in range(1, 4):
                f = first + ROUND * (step - back)
                if f < first:  # before the window: not in the predictor's context
                    continue
                for i, j in enumerate(partner[e, f]):
                    if j >= 0 and executed[e, f, j] == D:
                        want[step, i] = 3.5
        assert torch.equal(sample["weight"], torch.from_numpy(want)), index
        flagged += int((want > 1).sum())
    assert flagged > 0  # the test saw weighted agents


def test_validation_and_unweighted_runs_are_untouched(polis):
    weighted, plain = datamodule(polis, event_weight=2.0), datamodule(polis)
    assert "weight" not in weighted._dataset(weighted.val_episodes)[0]
    a = plain._dataset(plain.train_episodes, train=True)
    b = weighted._dataset(weighted.train_episodes, train=True)
    for index in range(0, len(a), 5):
        assert set(a[index]) == {"obs", "actions"}
        for key in ("obs", "actions"):
            assert torch.equal(a[index][key], b[index][key])


def test_weighted_loss_equal_weights_give_the_unweighted_loss():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 4, 12, generator=g), torch.randn(3, 4, 12, generator=g)
    ones = torch.full((3, 4, 6), 2.0)
    plain = torch.nn.functional.mse_loss(pred, target)
    for objects in (6, 1, 4):
        assert torch.allclose(weighted_loss(pred, target, None, ones, objects), plain)
    logvar = torch.randn(3, 4, 12, generator=g)
    nll = (0.5 * ((pred - target) ** 2 * torch.exp(-logvar) + logvar)).mean()
    assert torch.allclose(weighted_loss(pred, target, logvar, ones, 6), nll)


def test_weighted_loss_weights_each_object_s_block():
    pred, target = torch.zeros(1, 1, 6), torch.zeros(1, 1, 6)
    target[..., 2:4] = 1.0  # only object 1 (features 2, 3 of 3 objects x 2) is wrong: error 1
    weight = torch.tensor([[[1.0, 3.0, 1.0]]])
    assert weighted_loss(pred, target, None, weight, 3).item() == pytest.approx(3 / 5)
    # another token layout: the step's mean weight, so a single step's loss is unweighted
    assert weighted_loss(pred, target, None, weight, 1).item() == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="weights of shape"):
        weighted_loss(pred, target, None, torch.ones(1, 2, 3), 3)


def test_refused_on_a_dataset_without_exchanges(tmp_path):
    out = tmp_path / "physics"
    argv = ["generate", "physics", "--out", str(out), "--episodes", "4", "--frames", "12"]
    assert data_main([*argv, "--image-size", "16", "--seed", "0"]) == 0
    with pytest.raises(DatasetError, match="data.event_weight needs a Polis dataset"):
        WorldDataModule(str(out), observation="state", window=4, batch_size=2, event_weight=1.0)
    for bad, match in ((-1.0, "event_weight"), (math.inf, "event_weight")):
        with pytest.raises(ValueError, match=match):
            datamodule(tmp_path, event_weight=bad)
    with pytest.raises(ValueError, match="data.event_steps must be >= 1"):
        datamodule(tmp_path, event_steps=0)


def test_pwm_fit_trains_on_the_weighted_loss_and_logs_both(polis, tmp_path, capsys, monkeypatch):
    argv = ["fit", "-c", "experiments/base.yaml", "-c", "experiments/political.yaml"]
    argv += ["-c", "experiments/law.yaml", f"--data.path={polis}", "--data.batch_size=4"]
    argv += ["--data.event_weight=4", "--trainer.max_steps=3", "--trainer.val_check_interval=3"]
    argv += ["--trainer.limit_val_batches=1", "--trainer.log_every_n_steps=1"]
    argv += ["--trainer.enable_progress_bar=false", "--model.num_directions=16"]
    argv += [f"--trainer.default_root_dir={tmp_path}"]
    argv += [f"--trainer.logger.init_args.save_dir={tmp_path}"]
    argv += ["--trainer.logger.init_args.name=w", "--trainer.logger.init_args.version=0"]
    code, err = run_pwm(argv, capsys, monkeypatch)
    assert code == 0, err[-5:]
    rows = list(csv.DictReader(open(tmp_path / "w" / "version_0" / "metrics.csv")))
    train = [r for r in rows if r.get("train/weighted_pred_loss")]
    assert len(train) == 3
    lam = yaml.safe_load((tmp_path / "w" / "version_0" / "config.yaml").read_text())["model"]["lam"]
    for r in train:  # the weighted loss is the one in train/loss, and differs from pred_loss
        total = float(r["train/weighted_pred_loss"]) + lam * float(r["train/reg_loss"])
        assert float(r["train/loss"]) == pytest.approx(total, rel=1e-5)
        assert float(r["train/weighted_pred_loss"]) != float(r["train/pred_loss"])
    assert not any(r.get("val/weighted_pred_loss") for r in rows)


def small_module(**kw) -> JEPAModule:
    """A seeded object-centric state model over 3 objects of 4 state columns each, in eval."""
    torch.manual_seed(0)
    return JEPAModule(observation="state", obs_size=12, action_dim=2, window=4, history=3,
                      embed_dim=12, projector_hidden=16, objects=3, num_directions=8,
                      **kw).eval()  # fmt: skip


def test_the_module_weights_each_prediction_with_its_own_step_and_agent():
    """A weight at window step l, agent i scales the error of the prediction of step l (from the
    steps before it) for agent i's block: a shift by one step or agent changes the loss."""
    module = small_module(target="stopgrad")
    g = torch.Generator().manual_seed(1)
    obs, actions = torch.randn(2, 4, 12, generator=g), torch.randn(2, 4, 2, generator=g)
    weight = torch.ones(2, 4, 3)
    weight[0, 2, 1] = 50.0  # window step 2, agent 1
    with torch.no_grad():
        got = module.model_step({"obs": obs, "actions": actions, "weight": weight}, "train")
        z = module.model.encode(obs)
        pred, _ = module.model.predict_dist(z[:, :-1], actions[:, :-1])
        per = elementwise(pred, z[:, 1:]).reshape(2, 3, 3, 4).mean(-1)  # (B, step 1..3, agent)

    def expect(w):
        return (w * per).sum() / w.sum()

    assert got["weighted_pred_loss"].item() == pytest.approx(expect(weight[:, 1:]).item())
    for wrong in (weight[:, :-1], weight[:, 1:].roll(1, dims=-1)):
        assert got["weighted_pred_loss"].item() != pytest.approx(expect(wrong).item())
    assert got["pred_loss"].item() == pytest.approx(per.mean().item())


def oracle_module(**kw) -> JEPAModule:
    """An oracle model over 3 objects of 4 state columns each (z = the standardised state)."""
    return small_module(**{"target": "oracle", "regularizer": "none", **kw})


def test_feature_weights_weight_each_state_column_s_error_in_training_only():
    """model.feature_weights (issue 27's motion-only diagnostic): per object column, tiled over
    the objects, mean 1; the logged pred_loss and the validation loss stay unweighted."""
    g = torch.Generator().manual_seed(1)
    batch = {
        "obs": torch.randn(2, 4, 12, generator=g),
        "actions": torch.randn(2, 4, 2, generator=g),
    }
    plain = oracle_module()
    motion = oracle_module(feature_weights=[1.0, 1.0, 0.0, 0.0])  # the first two columns only
    assert plain.feature_scale is None
    assert motion.feature_scale.tolist() == pytest.approx([2**0.5, 2**0.5, 0.0, 0.0] * 3)
    with torch.no_grad():
        got = motion.model_step(dict(batch), "train")
        val = motion.model_step(dict(batch), "val")
        z = motion.model.encode(batch["obs"])
        pred, _ = motion.model.predict_dist(z[:, :-1], batch["actions"][:, :-1])
        sq = elementwise(pred, z[:, 1:]).reshape(2, 3, 3, 4)  # (B, step, object, column)
    assert got["weighted_pred_loss"].item() == pytest.approx(sq[..., :2].mean().item(), rel=1e-5)
    assert got["pred_loss"].item() == pytest.approx(sq.mean().item(), rel=1e-5)
    assert "weighted_pred_loss" not in val and val["loss"].item() == pytest.approx(
        sq.mean().item(), rel=1e-5
    )
    # equal weights are the plain loss; with event weights both act (each agent's block scaled)
    same = oracle_module(feature_weights=[3.0] * 4)
    with torch.no_grad():
        assert same.model_step(dict(batch), "train")["weighted_pred_loss"].item() == pytest.approx(
            plain.model_step(dict(batch), "train")["pred_loss"].item(), rel=1e-5)  # fmt: skip
        w = torch.ones(2, 4, 3)
        w[0, 2, 1] = 50.0
        both = motion.model_step({**batch, "weight": w}, "train")["weighted_pred_loss"]
    per = sq[..., :2].mean(-1)  # (B, step, object): the motion-only error per agent
    expect = (w[:, 1:] * per).sum() / w[:, 1:].sum()
    assert both.item() == pytest.approx(expect.item(), rel=1e-5)


@pytest.mark.parametrize("kw, words", [
    ({"feature_weights": [1.0, 0.0, 0.0, 0.0], "target": "stopgrad"}, "needs model.target oracle"),
    ({"feature_weights": [1.0, 0.0, 0.0]}, "must be 4 numbers"),
    ({"feature_weights": [1.0, -1.0, 0.0, 0.0]}, "must be 4 numbers"),
    ({"feature_weights": [0.0] * 4}, "not all 0"),
    ({"feature_weights": [1.0] * 4, "prediction": "gaussian"}, "model.prediction mse"),
])  # fmt: skip
def test_feature_weights_refuse_what_they_cannot_mean(kw, words):
    with pytest.raises(ValueError, match=words):
        oracle_module(**kw)
