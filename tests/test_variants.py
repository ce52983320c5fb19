"""The ablation switches of DESIGN 5.3, validate/test through the CLI, and offline wandb."""

import subprocess
import sys

import pytest
import torch

from pwm.checkpoint import load_world_model
from pwm.models import EncoderConfig, PredictorConfig
from pwm.module import JEPAModule, OptimConfig

PWM = [sys.executable, "-m", "pwm.cli"]


def small(**kw) -> JEPAModule:
    """A tiny state model (12 features, 8-d embedding); `kw` overrides any argument."""
    return JEPAModule(
        **{
            "observation": "state",
            "obs_size": 12,
            "action_dim": 2,
            "window": 5,
            "history": 4,
            "embed_dim": 8,
            "projector_hidden": 16,
            "encoder": EncoderConfig(width=16, depth=1),
            "predictor": PredictorConfig(16, 1, 2, 8, 32, 0.0),
            "num_directions": 32,
            "optim": OptimConfig(warmup_steps=1),
            **kw,
        }
    )


def reloaded(m: JEPAModule, tmp_path):
    """(network, hyperparameters) rebuilt by `load_world_model` from a checkpoint of `m`."""
    path = tmp_path / "m.ckpt"
    torch.save({"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict()}, path)
    return load_world_model(path)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"regularizer": "vicreg"},
        {"regularizer": "none"},
        {"regularizer": "none", "target": "ema"},
        {"target": "stopgrad"},
        {"regularizer": "none", "target": "frozen"},
        {"regularizer": "none", "target": "oracle"},
    ],
)
def test_each_variant_steps_and_logs_named_losses(kw):
    m = small(**kw)
    batch = {"obs": torch.randn(6, 5, 12), "actions": torch.randn(6, 5, 2)}
    out = m.model_step(batch, "train")
    assert set(out) == {"pred_loss", "reg_loss", "loss", "z_std", "z_rank"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    out["loss"].backward()
    if kw.get("target") == "oracle":  # no encoder parameters; the predictor learns
        assert all(p.grad is not None for p in m.model.predictor.parameters())
        return
    enc_grad = next(m.model.encoder.parameters()).grad
    if kw.get("target") == "frozen":  # only the predictor learns
        assert all(p.grad is None for p in m.model.encoder.parameters())
        assert all(p.grad is None for p in m.model.projector.parameters())
        assert all(p.grad is not None for p in m.model.predictor.parameters())
        return
    assert enc_grad is not None and enc_grad.abs().sum() > 0
    if kw.get("target") == "ema":
        assert all(p.grad is None for p in m.target_encoder.parameters())
        before = [p.clone() for p in m.target_encoder.parameters()]
        with torch.no_grad():
            for p in m.model.encoder.parameters():
                p.add_(1.0)
        m.on_train_batch_end(None, batch, 0)
        after = list(m.target_encoder.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_oracle_target_predicts_the_standardised_state_and_trains_the_predictor_alone():
    m = small(regularizer="none", target="oracle")
    assert not list(m.model.encoder.parameters()) and not list(m.model.projector.parameters())
    m.train()
    obs = torch.randn(6, 5, 12) * 3 + 2
    z = m.model.encode(obs)  # (6, 5, 12): the state itself, standardised per feature
    flat = obs.reshape(-1, 12)
    want = (flat - flat.mean(0)) / torch.sqrt(flat.var(0, unbiased=False) + 1e-5)
    assert z.shape == (6, 5, 12)
    torch.testing.assert_close(z.reshape(-1, 12), want, atol=1e-5, rtol=1e-5)
    out = m.model_step({"obs": obs, "actions": torch.randn(6, 5, 2)}, "train")
    out["loss"].backward()
    assert all(p.grad is not None for p in m.model.predictor.parameters())
    assert m.model.predictor(z, torch.zeros(6, 5, 2)).shape == (6, 5, 12)


@pytest.mark.parametrize(
    "kw", [{"target": "ema"}, {"target": "frozen"}, {"regularizer": "none", "target": "oracle"}]
)
def test_a_checkpoint_of_each_target_loads_as_the_same_network(kw, tmp_path):
    m = small(**kw).eval()
    model, hp = reloaded(m, tmp_path)
    assert hp == dict(m.hparams) and model.state_dict().keys() == m.model.state_dict().keys()
    obs = torch.randn(2, 5, 12)
    assert torch.equal(model.encode(obs), m.model.encode(obs))


def test_oracle_target_needs_state_observations():
    with pytest.raises(ValueError, match="oracle needs state observations"):
        JEPAModule(observation="pixels", obs_size=16, window=5, history=4, target="oracle")


def test_hyperparameters_are_plain_and_checkpoint_loads_weights_only(tmp_path):
    m = small(regularizer="vicreg")
    path = tmp_path / "m.pt"
    torch.save({"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    again = JEPAModule(**loaded["hyper_parameters"])
    again.load_state_dict(loaded["state_dict"])
    assert dict(again.hparams) == dict(m.hparams)
    assert again.hparams.encoder == {"patch_size": 8, "width": 16, "depth": 1, "heads": 3,
                                     "mlp_dim": 0, "tokens": "cls"}  # fmt: skip


def test_validate_and_test_from_a_checkpoint_and_offline_wandb(toy_dataset, tmp_path):
    common = [
        "-c",
        "experiments/base.yaml",
        "-c",
        "experiments/debug.yaml",
        f"--data.path={toy_dataset}",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    fit = subprocess.run(
        [
            *PWM,
            "fit",
            *common,
            "-c",
            "experiments/wandb.yaml",
            "--trainer.max_steps=3",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--trainer.limit_val_batches=1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert fit.returncode == 0, fit.stderr[-2000:]
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert (runs[0] / "files" / "config.yaml").read_text().count("regularizer: sigreg") == 1
    ckpt = next(tmp_path.rglob("last.ckpt"))
    for command, stage in (("validate", "val"), ("test", "test")):
        res = subprocess.run(
            [
                *PWM,
                command,
                *common,
                f"--ckpt_path={ckpt}",
                "--trainer.logger=false",
                "--trainer.limit_val_batches=2",
                "--trainer.limit_test_batches=2",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        assert f"{stage}/pred_loss" in res.stdout


def test_stopgrad_target_sends_the_prediction_gradient_through_the_context_only():
    """`target: stopgrad`: the encoder's gradient is that of the loss with z detached on the
    target side (and differs from LeWM's online target, whose gradient also reaches it there)."""
    batch = {"obs": torch.randn(6, 5, 12), "actions": torch.randn(6, 5, 2)}
    grads = {}
    for target in ("stopgrad", "online"):
        torch.manual_seed(0)
        m = small(regularizer="none", target=target)
        m.model_step(batch, "train")["pred_loss"].backward()
        grads[target] = [p.grad.clone() for p in m.model.encoder.parameters()]
    torch.manual_seed(0)
    m = small(regularizer="none")
    z = m.model.encode(batch["obs"])
    pred = m.model.predict(z[:, :-1], batch["actions"][:, :-1])
    torch.nn.functional.mse_loss(pred, z.detach()[:, 1:]).backward()
    want = [p.grad for p in m.model.encoder.parameters()]
    for got, ref in zip(grads["stopgrad"], want, strict=True):
        torch.testing.assert_close(got, ref)
    assert any(
        not torch.allclose(a, b) for a, b in zip(grads["stopgrad"], grads["online"], strict=True)
    )
