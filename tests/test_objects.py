"""The object-centric model (`model.objects`): per-object tokens, their mask, their training."""

import pytest
import test_variants
import torch

from pwm.models import ObjectStateEncoder, Predictor, build_world_model
from pwm.models.predictor import object_causal_mask
from pwm.module import JEPAModule


def small(**kw) -> JEPAModule:
    """test_variants' tiny state model with 3 objects of 4 features and 2-d object embeddings."""
    return test_variants.small(embed_dim=6, objects=3, **kw)


def test_object_mask_repeats_the_frame_mask_per_object():
    m = object_causal_mask(3, 2, history=2)
    assert m.shape == (6, 6)
    frame = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=torch.bool)
    for t in range(3):
        for s in range(3):
            assert bool(m[2 * t : 2 * t + 2, 2 * s : 2 * s + 2].all()) == bool(frame[t, s])
            assert bool(m[2 * t : 2 * t + 2, 2 * s : 2 * s + 2].any()) == bool(frame[t, s])


def _perturbed(objects: int, frame: int, obj: int) -> torch.Tensor:
    """Which (position, object) outputs change when one object of one frame changes."""
    torch.manual_seed(0)
    pred = Predictor(12, 2, 3, 6, 16, 2, 2, 8, 32, 0.0, objects=objects).eval()
    for block in pred.blocks:  # leave AdaLN-zero's identity init, so attention is used
        torch.nn.init.normal_(block.ada[1].weight, std=0.1)
    z, a = torch.randn(1, 6, 12), torch.randn(1, 6, 2)
    z2 = z.clone()
    d = 12 // objects
    z2[:, frame, obj * d : (obj + 1) * d] += 1.0
    diff = (pred(z2, a) - pred(z, a)).abs().reshape(6, objects, d).amax(-1)  # (T, k)
    return diff > 1e-6


def test_object_predictor_is_causal_in_time_and_mixes_objects():
    """A change of object 1 at frame 2 reaches every object's prediction from frame 2 on (the
    agents attend to each other) and none before (causal), up to (H - 1) * depth + 1 frames."""
    changed = _perturbed(objects=3, frame=2, obj=1)
    assert not changed[:2].any()
    assert changed[2:].all()


def test_one_object_is_the_frame_predictor_bit_for_bit():
    torch.manual_seed(0)
    a = Predictor(12, 2, 3, 6, 16, 2, 2, 8, 32, 0.0)
    torch.manual_seed(0)
    b = Predictor(12, 2, 3, 6, 16, 2, 2, 8, 32, 0.0, objects=1)
    assert a.state_dict().keys() == b.state_dict().keys()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    z, act = torch.randn(2, 6, 12), torch.randn(2, 6, 2)
    assert torch.equal(a.eval()(z, act), b.eval()(z, act))


def test_object_encoder_is_shared_across_objects_but_knows_identity():
    enc = ObjectStateEncoder(12, 3, 8).eval()
    rows = torch.randn(1, 4).repeat(1, 3)  # every object has the same features
    out = enc(rows)  # (1, 3, 8)
    assert out.shape == (1, 3, 8)
    assert not torch.allclose(out[0, 0], out[0, 1])  # the identity embedding separates them
    with torch.no_grad():
        enc.ident.zero_()
    out = enc(rows)
    torch.testing.assert_close(out[0, 0], out[0, 1])  # otherwise the same shared map
    torch.testing.assert_close(out[0, 0], out[0, 2])


@pytest.mark.parametrize("kw", [{}, {"regularizer": "none", "target": "oracle"}])
def test_object_model_steps_trains_and_rebuilds_from_its_checkpoint(kw, tmp_path):
    m = small(**kw).train()
    obs = torch.randn(6, 5, 12)
    z = m.model.encode(obs)
    assert z.shape == (6, 5, 12 if kw else 6)
    out = m.model_step({"obs": obs, "actions": torch.randn(6, 5, 2)}, "train")
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(p.grad is not None for p in m.model.predictor.parameters())
    if not kw:  # end to end: the per-object encoder learns too
        assert all(p.grad is not None for p in m.model.encoder.parameters())
    model, _ = test_variants.reloaded(m, tmp_path)
    m.eval()
    assert torch.equal(model.encode(obs), m.model.encode(obs))


def test_bad_object_configs():
    build = build_world_model
    with pytest.raises(ValueError, match="needs state observations"):
        build(observation="pixels", obs_size=16, window=5, history=4, objects=2)
    with pytest.raises(ValueError, match="does not divide the 12 state features"):
        build(observation="state", obs_size=12, window=5, history=4, objects=5)
    with pytest.raises(ValueError, match="does not divide model.embed_dim"):
        build(observation="state", obs_size=12, window=5, history=4, objects=3, embed_dim=8)
    with pytest.raises(ValueError, match="must be >= 1"):
        build(observation="state", obs_size=12, window=5, history=4, objects=0)
    with pytest.raises(ValueError, match="needs state observations"):  # the module checks too
        JEPAModule(observation="pixels", obs_size=16, window=5, history=4, objects=2)
    with pytest.raises(ValueError, match="divide embed_dim"):
        Predictor(10, 2, 3, 6, 16, 1, 2, 8, 32, objects=3)


def test_action_modulation_is_computed_per_frame_and_equals_per_token():
    """The block maps each frame's condition once and shares it with the frame's k tokens: the
    same output as mapping a condition repeated per token."""
    torch.manual_seed(0)
    pred = Predictor(12, 2, 3, 6, 16, 2, 2, 8, 32, 0.0, objects=3).eval()
    block = pred.blocks[0]
    torch.nn.init.normal_(block.ada[1].weight, std=0.1)
    x, cond = torch.randn(2, 18, 16), torch.randn(2, 6, 16)
    mask = object_causal_mask(6, 3, 3)
    torch.testing.assert_close(block(x, cond, mask), block(x, cond.repeat_interleave(3, 1), mask))
