"""Checkpoints made by earlier code load and compute what they computed then.

tests/fixtures/checkpoints/ holds five tiny `pwm fit` checkpoints (pixels online + SIGReg,
object-centric stopgrad, object-centric oracle, EMA + VICReg, frozen; made by
tests/fixtures/make_fixtures.py) with the embeddings, surprise and evaluation losses that the
code which saved them computed from fixed inputs. Each must load, reproduce those numbers and
keep its state_dict and hyperparameter keys.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pwm.module import JEPAModule
from pwm.probes.checkpoint import hparams_of, load_checkpoint
from pwm.probes.surprise import frame_surprise

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.ckpt"))
PWM = [sys.executable, "-m", "pwm.cli"]
TOL = {"rtol": 1e-5, "atol": 1e-6}


def test_every_fixture_is_there():
    assert NAMES == [
        "pixels_online_sigreg",
        "state_ema_vicreg",
        "state_frozen_none",
        "state_objects_oracle",
        "state_objects_stopgrad",
    ]


def windows(x: torch.Tensor, length: int) -> torch.Tensor:
    """(E, T, ...) episodes -> (E * (T - length + 1), length, ...) overlapping windows."""
    return torch.cat([x[:, s : s + length] for s in range(x.shape[1] - length + 1)])


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_old_checkpoint_reproduces_its_embeddings_surprise_and_losses(name):
    inputs, want = np.load(FIXTURES / "inputs.npz"), np.load(FIXTURES / f"{name}.npz")
    module = load_checkpoint(FIXTURES / f"{name}.ckpt")
    hp = dict(module.hparams)
    obs = torch.from_numpy(inputs[hp["observation"]])  # (E, T, ...)
    act = torch.from_numpy(inputs["actions"])  # (E, T, A)
    z = module.model.encode(obs)  # (E, T, D)
    torch.testing.assert_close(z, torch.from_numpy(want["z"]), **TOL)
    s = frame_surprise(module.model, z, act, hp["history"])  # (E, T)
    torch.testing.assert_close(s, torch.from_numpy(want["surprise"]), equal_nan=True, **TOL)
    batch = {"obs": windows(obs, hp["window"]), "actions": windows(act, hp["window"])}
    losses = module.model_step(batch, "val")
    for key in ("pred_loss", "reg_loss", "loss"):
        torch.testing.assert_close(losses[key], torch.from_numpy(want[key]), **TOL)


@pytest.mark.parametrize("name", NAMES)
def test_old_checkpoint_keeps_its_state_dict_and_hyperparameter_keys(name):
    ckpt = torch.load(FIXTURES / f"{name}.ckpt", weights_only=True)
    module = JEPAModule(**hparams_of(ckpt["hyper_parameters"]))
    saved = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == saved
    assert set(module.hparams) == set(hparams_of(ckpt["hyper_parameters"]))


def test_old_checkpoint_resumes_training(toy_dataset, tmp_path):
    """Resuming restores the optimiser state, which lists the parameters in registration order:
    an object-centric checkpoint (whose predictor has the most parameters) trains on."""
    fixture = FIXTURES / "state_objects_stopgrad.ckpt"
    cmd = [*PWM, "fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml",
           f"--data.path={toy_dataset}", "--data.observation=state", "--data.window=4",
           f"--ckpt_path={fixture}", "--trainer.max_steps=6", "--trainer.limit_val_batches=0",
           "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}",
           f"--trainer.logger.init_args.save_dir={tmp_path}"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    ckpt = torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=True)
    old = torch.load(fixture, weights_only=True)
    assert ckpt["global_step"] == 6 and ckpt["state_dict"].keys() == old["state_dict"].keys()
