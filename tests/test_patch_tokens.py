"""Patch tokens from pixels (`model.encoder.tokens=patches`, issue 28): the ViT gives one token
per patch and the predictor attends over patches and time, as over the objects of the state."""

import pytest
import test_variants
import torch

from pwm.models import EncoderConfig, build_world_model
from pwm.models.encoders import ViTEncoder
from pwm.module import JEPAModule


def pixel_model(**kw) -> JEPAModule:
    """A tiny pixel model: 16 px frames, 4 px patches (16 patch tokens), 2-d token embeddings."""
    return test_variants.small(
        observation="pixels",
        obs_size=16,
        embed_dim=32,
        objects=16,
        encoder=EncoderConfig(patch_size=4, width=16, depth=1, heads=2, tokens="patches"),
        **kw,
    )


def test_patch_tokens_are_per_patch_and_local_in_the_embedding():
    """(B, P, width) out (the CLS mode: (B, width)), row-major patches. With the attention
    off (depth 0 is not allowed; its output projection zeroed), each patch token depends on its
    own pixels only: changing one patch moves that token alone."""
    torch.manual_seed(0)
    enc = ViTEncoder(16, 4, 16, 1, 2, tokens="patches").eval()
    cls = ViTEncoder(16, 4, 16, 1, 2).eval()
    cls.load_state_dict(enc.state_dict())
    frames = torch.randint(0, 256, (3, 16, 16, 3), dtype=torch.uint8)
    out = enc(frames)
    assert out.shape == (3, 16, 16)
    assert cls(frames).shape == (3, 16)
    with torch.no_grad():
        for block in enc.vit.encoder.layers:
            block.self_attention.out_proj.weight.zero_()
            block.self_attention.out_proj.bias.zero_()
    base = enc(frames)
    changed = frames.clone()
    changed[:, 4:8, 8:12] = 255 - changed[:, 4:8, 8:12]  # patch (row 1, column 2): index 6
    moved = (enc(changed) - base).abs().amax(-1).amax(0)  # (P,)
    assert moved[6] > 1e-3
    assert torch.all(moved[torch.arange(16) != 6] == 0)


def test_patch_token_model_steps_trains_and_rebuilds_from_its_checkpoint(tmp_path):
    m = pixel_model().train()
    obs = torch.randint(0, 256, (4, 5, 16, 16, 3), dtype=torch.uint8)
    z = m.model.encode(obs)
    assert z.shape == (4, 5, 32)
    assert m.model.predictor.objects == 16
    out = m.model_step({"obs": obs, "actions": torch.randn(4, 5, 2)}, "train")
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(p.grad is not None for p in m.model.encoder.parameters() if p.requires_grad)
    model, _ = test_variants.reloaded(m, tmp_path)
    m.eval()
    assert torch.equal(model.encode(obs), m.model.encode(obs))


def test_bad_token_configs():
    def build(**kw):
        args = {"observation": "pixels", "obs_size": 16, "window": 5, "history": 4}
        return build_world_model(**{**args, **kw})

    patches = EncoderConfig(patch_size=4, width=16, depth=1, heads=2, tokens="patches")
    with pytest.raises(ValueError, match=r"tokens patches gives 16 tokens .* set model.objects=16"):
        build(encoder=patches, embed_dim=32)
    with pytest.raises(ValueError, match="tokens patches needs pixel observations"):
        build(observation="state", obs_size=12, encoder=patches, objects=16, embed_dim=32)
    with pytest.raises(ValueError, match="model.encoder.tokens must be one of cls, patches"):
        build(encoder=EncoderConfig(patch_size=4, width=16, depth=1, heads=2, tokens="slots"))
    with pytest.raises(ValueError, match="with pixels, model.encoder.tokens=patches"):
        build(objects=2, embed_dim=32)
    with pytest.raises(ValueError, match="objects 16 does not divide model.embed_dim 24"):
        build(encoder=patches, objects=16, embed_dim=24)
