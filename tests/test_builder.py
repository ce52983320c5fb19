"""The model builder and the one checkpoint loader (models/builder.py, pwm/checkpoint.py)."""

import inspect

import pytest
import torch

from pwm.checkpoint import CheckpointError, load_world_model
from pwm.models import architecture, as_config, build_world_model
from pwm.models.builder import EncoderConfig
from pwm.module import JEPAModule
from pwm.probes.checkpoint import random_model

HPARAMS = {  # a tiny object-centric state model, as a checkpoint stores it
    "observation": "state",
    "obs_size": 12,
    "action_dim": 2,
    "window": 5,
    "world": "toy",
    "history": 4,
    "embed_dim": 8,
    "projector_hidden": 16,
    "encoder": {"patch_size": 8, "width": 16, "depth": 1, "heads": 2, "mlp_dim": 0},
    "predictor": {"width": 16, "depth": 1, "heads": 2, "head_dim": 8, "mlp_dim": 32,
                  "dropout": 0.0},
    "regularizer": "sigreg",
    "target": "online",
    "objects": 2,
}  # fmt: skip


def test_builder_defaults_are_the_module_defaults():
    """A checkpoint that lacks an option (saved before it existed) gets the module's default."""
    module = inspect.signature(JEPAModule).parameters
    for name, p in inspect.signature(build_world_model).parameters.items():
        assert p.default == module[name].default, name


def test_the_module_builds_its_network_with_the_builder():
    torch.manual_seed(0)
    a = JEPAModule(**HPARAMS).model.state_dict()
    torch.manual_seed(0)
    b = build_world_model(**architecture(HPARAMS)).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_random_model_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = (random_model(HPARAMS, seed).model.state_dict() for seed in (3, 3, 4))
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["predictor.ident"], c["predictor.ident"])


def test_loader_returns_the_network_in_eval_mode(tmp_path):
    m = JEPAModule(**HPARAMS)
    path = tmp_path / "m.ckpt"
    hp = {**dict(m.hparams), "_instantiator": "lightning.pytorch.cli.instantiate_module"}
    torch.save({"hyper_parameters": hp, "state_dict": m.state_dict()}, path)
    model, hparams = load_world_model(path)
    assert not model.training and hparams == dict(m.hparams)  # private entries dropped
    m.eval()
    obs, act = torch.randn(2, 5, 12), torch.randn(2, 5, 2)
    assert torch.equal(
        model.predict(model.encode(obs), act), m.model.predict(m.model.encode(obs), act)
    )


def test_loader_refuses_what_it_cannot_rebuild_in_one_line(tmp_path):
    m = JEPAModule(**HPARAMS)
    state = {k: v for k, v in m.state_dict().items() if k != "model.predictor.pos"}
    torch.save({"hyper_parameters": dict(m.hparams), "state_dict": state}, tmp_path / "a.ckpt")
    with pytest.raises(
        CheckpointError,
        match=r"weights do not fit .*Missing key\(s\) in state_dict: \"predictor.pos\"",
    ) as e:
        load_world_model(tmp_path / "a.ckpt")
    assert "\n" not in str(e.value)
    bad = {**dict(m.hparams), "history": 5}  # not < window
    torch.save({"hyper_parameters": bad, "state_dict": m.state_dict()}, tmp_path / "b.ckpt")
    with pytest.raises(CheckpointError, match="cannot be rebuilt: model.history must be in"):
        load_world_model(tmp_path / "b.ckpt")
    with pytest.raises(CheckpointError, match="not found"):
        load_world_model(tmp_path / "none.ckpt")


def test_bad_names_and_sections_are_one_line_errors():
    with pytest.raises(ValueError, match="model.target must be one of online, stopgrad"):
        build_world_model(**{**architecture(HPARAMS), "target": "oracel"})
    with pytest.raises(ValueError, match="model.regularizer must be one of sigreg, vicreg"):
        JEPAModule(**{**HPARAMS, "regularizer": "sigregg"})
    with pytest.raises(ValueError, match=r"unknown EncoderConfig keys \['widht'\]"):
        as_config(EncoderConfig, {"widht": 3})
    with pytest.raises(ValueError, match="model.ema_momentum must be in"):
        JEPAModule(**{**HPARAMS, "target": "ema", "ema_momentum": 1.5})
    with pytest.raises(ValueError, match="model.projector must be one of mlp, linear, got 'lin'"):
        build_world_model(**{**architecture(HPARAMS), "projector": "lin"})


def test_the_linear_projector_keeps_every_linear_read_of_the_encoder_output():
    """`projector: linear` maps each object's feature to z by Linear and BatchNorm: an affine,
    invertible map (square and full rank here), so the encoder's output is a linear function of z
    and any linear read of it is one of z; the MLP projector has a hidden nonlinearity."""
    torch.manual_seed(0)
    hp = {**architecture(HPARAMS), "embed_dim": 32, "encoder": {**HPARAMS["encoder"], "width": 16}}
    model = build_world_model(**hp, projector="linear").eval()
    assert [type(m).__name__ for m in model.projector.children()] == ["Linear", "BatchNorm1d"]
    x = torch.randn(256, 12)
    tok = model.encoder(x).flatten(0, 1)  # (512, 16)
    z = model.projector(tok)  # (512, 16)
    assert z.shape == tok.shape
    fit = torch.linalg.lstsq(torch.cat([z, torch.ones(len(z), 1)], 1), tok).solution
    resid = torch.cat([z, torch.ones(len(z), 1)], 1) @ fit - tok
    assert resid.abs().max() < 1e-4  # the token is recovered exactly from z
    mlp = build_world_model(**hp).eval()
    assert any(isinstance(m, torch.nn.GELU) for m in mlp.projector.modules())
    # the module builds it from its hyperparameter, and a checkpoint's hparams rebuild it
    module = JEPAModule(**{**HPARAMS, "embed_dim": 32, "projector": "linear"})
    assert type(module.model.projector).__name__ == "LinearProjector"
    assert type(build_world_model(**architecture(dict(module.hparams))).projector).__name__ == (
        "LinearProjector"
    )
