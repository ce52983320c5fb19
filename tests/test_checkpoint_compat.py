"""Checkpoints made by earlier code load and compute what they computed then.

tests/fixtures/checkpoints/ holds five tiny `pwm fit` checkpoints (pixels online + SIGReg,
object-centric stopgrad, object-centric oracle, EMA + VICReg, frozen) with the embeddings,
surprise and evaluation losses that the code which saved them computed from fixed inputs
(tests/fixtures/make_fixtures.py, run at commit 6be1d2a, before the builder). Each must load
through `load_world_model` and reproduce those numbers; the LightningModule must take its
state_dict as it is and reproduce its losses; and one must resume training.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from pwm.checkpoint import hparams_of, load_world_model
from pwm.models.builder import EncoderConfig, PredictorConfig
from pwm.module import JEPAModule, OptimConfig
from pwm.probes.checkpoint import random_model
from pwm.probes.surprise import frame_surprise

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.ckpt"))
PWM = [sys.executable, "-m", "pwm.cli"]
TOL = {"rtol": 1e-5, "atol": 1e-6}
# the networks whose random initialisation changed with the builder: the oracle's (the unused
# encoder is no longer built first) and the object-centric predictor's (its object embedding
# is drawn before the blocks); every other random network is drawn as before
NEW_INIT = ("state_objects_oracle", "state_objects_stopgrad")
# the hyperparameters saved as a dict: a section of the model options and its dataclass
SECTIONS = {"encoder": EncoderConfig, "predictor": PredictorConfig, "optim": OptimConfig}


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


def surprise(model, hp: dict, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (E, T, D) and surprise (E, T) of the fixed inputs."""
    obs = torch.from_numpy(inputs[hp["observation"]])  # (E, T, ...)
    z = model.encode(obs)  # (E, T, D)
    return z, frame_surprise(model, z, torch.from_numpy(inputs["actions"]), hp["history"])


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_old_checkpoint_loads_and_reproduces_its_embeddings_and_surprise(name):
    inputs, want = np.load(FIXTURES / "inputs.npz"), np.load(FIXTURES / f"{name}.npz")
    model, hp = load_world_model(FIXTURES / f"{name}.ckpt")
    assert not model.training
    z, s = surprise(model, hp, inputs)
    torch.testing.assert_close(z, torch.from_numpy(want["z"]), **TOL)
    torch.testing.assert_close(s, torch.from_numpy(want["surprise"]), equal_nan=True, **TOL)
    rand = torch.from_numpy(want["random_surprise"])
    _, s_rand = surprise(random_model(hp, 0).model, hp, inputs)
    if name in NEW_INIT:
        assert not torch.allclose(s_rand[:, 3:], rand[:, 3:])
    else:
        torch.testing.assert_close(s_rand, rand, equal_nan=True, **TOL)


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_old_checkpoint_reproduces_its_losses_in_the_lightning_module(name):
    inputs, want = np.load(FIXTURES / "inputs.npz"), np.load(FIXTURES / f"{name}.npz")
    ckpt = torch.load(FIXTURES / f"{name}.ckpt", weights_only=True)
    module = JEPAModule(**hparams_of(ckpt["hyper_parameters"]))
    module.load_state_dict(ckpt["state_dict"])  # strict: the same keys and shapes
    hp = dict(module.hparams)
    obs = torch.from_numpy(inputs[hp["observation"]])  # (E, T, ...)
    act = torch.from_numpy(inputs["actions"])  # (E, T, A)
    batch = {"obs": windows(obs, hp["window"]), "actions": windows(act, hp["window"])}
    losses = module.eval().model_step(batch, "val")
    for key in ("pred_loss", "reg_loss", "loss"):
        torch.testing.assert_close(losses[key], torch.from_numpy(want[key]), **TOL)


@pytest.mark.parametrize("name", NAMES)
def test_old_checkpoint_keeps_its_state_dict_and_hyperparameter_keys(name):
    ckpt = torch.load(FIXTURES / f"{name}.ckpt", weights_only=True)
    hparams = hparams_of(ckpt["hyper_parameters"])
    module = JEPAModule(**hparams)
    shapes = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == shapes
    # every saved hyperparameter is still an option and saved as it was; an option added later
    # takes its default, also inside a section (encoder.tokens: "cls", the saved ViT's)
    for k, v in hparams.items():
        if k in SECTIONS:
            assert module.hparams[k] == asdict(SECTIONS[k]()) | v
        else:
            assert module.hparams[k] == v


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
