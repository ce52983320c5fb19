"""Shapes, causality, zero actions, AdaLN-zero initialisation, and LeWM's reference size."""

import pytest
import torch

from pwm.models import (
    EncoderConfig,
    Predictor,
    PredictorConfig,
    Projector,
    StateEncoder,
    ViTEncoder,
    WorldModel,
    build_world_model,
)
from pwm.models.predictor import sliding_causal_mask


def tiny_model(action_dim=2, history=4, window=8, image=32):
    enc = ViTEncoder(image, 8, 32, 1, 2)
    return WorldModel(
        enc,
        Projector(32, 64, 16),
        Predictor(16, action_dim, history, window, 32, 2, 2, 16, 64, 0.0),
    )


def test_encode_predict_shapes_pixels_and_state():
    m = tiny_model().eval()
    px = torch.randint(0, 255, (3, 8, 32, 32, 3), dtype=torch.uint8)
    z = m.encode(px)
    assert z.shape == (3, 8, 16)
    assert m.predict(z, torch.randn(3, 8, 2)).shape == (3, 8, 16)
    s = WorldModel(
        StateEncoder(36, 32), Projector(32, 64, 16), Predictor(16, 2, 4, 8, 32, 1, 2, 16, 64)
    ).eval()
    assert s.encode(torch.randn(2, 8, 36)).shape == (2, 8, 16)


def test_zero_action_dimensions():
    m = tiny_model(action_dim=0).eval()
    z = torch.randn(2, 8, 16)
    assert m.predict(z, torch.zeros(2, 8, 0)).shape == (2, 8, 16)


def _perturbed_positions(depth: int, history: int) -> list[bool]:
    torch.manual_seed(0)
    pred = Predictor(16, 2, history, 8, 32, depth, 2, 16, 64, 0.0).eval()
    for block in pred.blocks:  # leave AdaLN-zero's identity init, so attention is used
        torch.nn.init.normal_(block.ada[1].weight, std=0.1)
    z, a = torch.randn(1, 8, 16), torch.randn(1, 8, 2)
    z2 = z.clone()
    z2[:, 4] += 1.0
    return ((pred(z2, a) - pred(z, a)).abs().amax(-1)[0] > 1e-6).tolist()


def test_predictor_is_causal_and_each_layer_sees_history_frames():
    """Changing frame 4 never changes earlier positions; one layer sees exactly H frames, and
    stacked layers see (H - 1) * depth + 1 (with window = H + 1, the default, that is all)."""
    assert _perturbed_positions(depth=1, history=3) == [0, 0, 0, 0, 1, 1, 1, 0]
    assert _perturbed_positions(depth=2, history=3) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert _perturbed_positions(depth=2, history=2) == [0, 0, 0, 0, 1, 1, 1, 0]


def test_sliding_mask():
    m = sliding_causal_mask(4, 2)
    assert m.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]


def test_adaln_zero_blocks_start_as_identity():
    pred = Predictor(16, 2, 4, 8, 32, 2, 2, 16, 64, 0.0).eval()
    x = torch.randn(2, 8, 32)
    cond = torch.randn(2, 8, 32)
    mask = sliding_causal_mask(8, 4)
    for block in pred.blocks:
        assert torch.equal(block(x, cond, mask), x)


def test_rollout_shape_and_consistency_with_predict():
    m = tiny_model().eval()
    z, a = torch.randn(2, 3, 16), torch.randn(2, 6, 2)
    out = m.rollout(z, a)
    assert out.shape == (2, 4, 16)
    assert torch.allclose(out[:, 0], m.predict(z, a[:, :3])[:, -1], atol=1e-6)


def test_bad_configs():
    with pytest.raises(ValueError, match="divisible"):
        ViTEncoder(30, 8, 32, 1, 2)
    with pytest.raises(ValueError, match="history"):
        Predictor(16, 2, 0, 8, 32, 1, 2, 16, 64)
    with pytest.raises(ValueError, match="max_len"):
        Predictor(16, 2, 2, 4, 32, 1, 2, 16, 64)(torch.randn(1, 6, 16), torch.randn(1, 6, 2))


def test_lewm_reference_parameter_count():
    """LeWM reports ~15M parameters (~18M counting projectors); the reference config must match."""
    m = build_world_model(
        observation="pixels",
        obs_size=224,
        action_dim=2,
        window=4,
        history=3,
        embed_dim=192,
        projector_hidden=2048,
        encoder=EncoderConfig(14, 192, 12, 3),
        predictor=PredictorConfig(192, 6, 16, 64, 2048),
    )
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    total = count(m)
    core = count(m.encoder) + count(m.predictor) - count(m.predictor.proj)
    print(f"LeWM reference: {total / 1e6:.2f}M total, {core / 1e6:.2f}M without projectors")
    assert 14e6 < core < 17e6
    assert 16e6 < total < 19e6


def test_vit_self_attention_matches_torchvision_multihead_attention():
    """ViTEncoder swaps torchvision's nn.MultiheadAttention for SelfAttention (faster on CPU):
    same parameter names, and the same outputs and gradients as the original encoder."""
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    enc = ViTEncoder(image_size=32, patch_size=8, width=32, depth=2, heads=4)
    ref = VisionTransformer(32, 8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=128)
    ref.heads = torch.nn.Identity()
    assert enc.vit.state_dict().keys() == ref.state_dict().keys()
    ref.load_state_dict(enc.vit.state_dict())
    x = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    out = enc(x)
    expected = ref(x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, p), q in zip(enc.vit.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("objects", [1, 3])
def test_last_only_prediction_equals_the_full_pass(objects):
    """`last=True` (the probes' and rollout's path: the last block and the projector on the last
    frame's tokens only) gives the full pass's last position."""
    torch.manual_seed(0)
    pred = Predictor(12, 2, 4, 6, 16, 3, 2, 8, 32, 0.0, objects=objects).eval()
    for block in pred.blocks:  # leave AdaLN-zero's identity init, so every branch is used
        torch.nn.init.normal_(block.ada[1].weight, std=0.1)
    z, a = torch.randn(5, 6, 12), torch.randn(5, 6, 2)
    last = pred(z, a, last=True)
    assert last.shape == (5, 1, 12)
    torch.testing.assert_close(last, pred(z, a)[:, -1:])
    torch.testing.assert_close(
        pred(z[:, :4], a[:, :4], last=True), pred(z[:, :4], a[:, :4])[:, -1:]
    )


def test_gaussian_prediction_scores_a_likelihood_and_keeps_the_mean_path():
    import torch

    from pwm.losses.prediction import surprise
    from pwm.models import build_world_model

    torch.manual_seed(0)
    common = dict(observation="state", obs_size=12, action_dim=3, window=6, history=4,
                  embed_dim=8, projector_hidden=16, predictor=dict(width=16, depth=1, heads=2,
                  head_dim=8, mlp_dim=32, dropout=0.0), objects=2)  # fmt: skip
    gauss = build_world_model(**common, prediction="gaussian").eval()
    z, a = torch.randn(3, 5, 8), torch.randn(3, 5, 3)
    mean, logvar = gauss.predict_dist(z, a)
    assert mean.shape == logvar.shape == (3, 5, 8) and logvar.abs().max() <= 8
    torch.testing.assert_close(gauss.predict(z, a), mean)  # rollouts use the mean
    target = torch.randn(3, 5, 8)
    want = (0.5 * ((mean - target) ** 2 / logvar.exp() + logvar)).mean(-1)
    torch.testing.assert_close(gauss.error(mean, target, logvar), want)
    # a confident prediction that misses costs more than an unsure one that misses equally
    sure, unsure = torch.full((1, 8), -4.0), torch.full((1, 8), 0.0)
    miss = torch.ones(1, 8)
    assert surprise(torch.zeros(1, 8), miss, sure) > surprise(torch.zeros(1, 8), miss, unsure)
    plain = build_world_model(**common)  # mse: no variance head
    assert plain.predict_dist(z, a)[1] is None
    with pytest.raises(ValueError, match="model.prediction must be one of mse, gaussian"):
        build_world_model(**common, prediction="laplace")
