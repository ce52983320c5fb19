"""Object tokens from pixels (issue 28): `pwm generate polis --crops PX` writes the `crops`
observation (per agent its position and the PX x PX pixels around it), and `data.observation=crops`
trains a CNN per agent's crop into the object-centric predictor (models/encoders.py CropEncoder)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import test_variants
import torch

from data_gen import polis
from data_gen.polis_config import PolisConfig
from data_gen.render import BACKGROUND, crop_observation, crops, render
from pwm.data.format import open_dataset
from pwm.models import EncoderConfig, build_world_model
from pwm.models.encoders import CropEncoder, crop_side

COLORS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], dtype=np.uint8)


def test_a_crop_is_the_frame_s_window_nearest_the_agent_s_centre_and_background_outside():
    pos = np.array([[[0.5, 0.25], [0.2, 0.7], [0.99, 0.01]]])  # (1, N, 2): x, y
    frames = render(pos, 0.05, 32, COLORS)  # (1, 32, 32, 3)
    out = crops(frames, pos, 8)
    assert out.shape == (1, 3, 8, 8, 3) and out.dtype == np.uint8
    # agent 0: centre (16 - 0.5, 8 - 0.5) in pixels -> the window of columns 12..19, rows 4..11
    assert np.array_equal(out[0, 0], frames[0, 4:12, 12:20])
    assert np.array_equal(out[0, 0, 3, 3], COLORS[0])  # the disc fills the window's middle
    assert np.array_equal(out[0, 1, 4, 4], COLORS[1])
    # agent 2 sits in the corner: the window's part beyond the frame is background
    # (centre (31.2, -0.2): rows -4..3, columns 28..35)
    assert np.array_equal(out[0, 2, 0, 0], BACKGROUND)
    assert np.array_equal(out[0, 2, -1, 0], frames[0, 3, 28])
    assert np.array_equal(out[0, 2, :4, 4:], np.broadcast_to(BACKGROUND, (4, 4, 3)))


@pytest.mark.parametrize("size", [5, 7])
def test_an_odd_crop_is_centred_on_the_disc_s_pixel_and_clipped_at_the_right_edge(size):
    pos = np.array([[[0.3, 0.52], [0.999, 0.6]]])  # agent 1 against the right edge
    frames = render(pos, 0.05, 32, COLORS[:2])
    out = crops(frames, pos, size)
    h = size // 2
    # agent 0: centre (9.6 - 0.5, 16.64 - 0.5) is in pixel column 9, row 16 (odd side: the
    # window's middle pixel is the centre's pixel)
    assert np.array_equal(out[0, 0], frames[0, 16 - h : 16 + h + 1, 9 - h : 9 + h + 1])
    # agent 1: columns 31 - h .. 31 + h, those beyond column 31 background; rows inside
    row = int(np.rint(0.6 * 32 - 0.5))
    inside = frames[0, row - h : row + h + 1, 31 - h :]
    assert np.array_equal(out[0, 1, :, : h + 1], inside)
    assert np.all(out[0, 1, :, h + 1 :] == BACKGROUND)


def test_the_crops_observation_is_agent_major_position_then_pixels():
    rng = np.random.default_rng(0)
    pos = rng.uniform(0.1, 0.9, (2, 5, 3, 2)).astype(np.float32)  # (B, T, N, 2)
    frames = render(pos, 0.05, 16, COLORS)
    obs = crop_observation(frames, pos, 4)
    assert obs.shape == (2, 5, 3 * (2 + 3 * 16)) and obs.dtype == np.float32
    rows = obs.reshape(2, 5, 3, 2 + 48)
    assert np.array_equal(rows[..., :2], pos)
    assert np.array_equal(rows[..., 2:].reshape(2, 5, 3, 4, 4, 3), crops(frames, pos, 4))
    assert crop_side(2 + 3 * 16) == 4 and crop_side(2 + 3 * 16 + 1) == 0 and crop_side(2) == 0


@pytest.mark.parametrize("kind", ["generate", "items", "consequence"])
def test_every_polis_set_carries_its_frames_crops(tmp_path, kind):
    """Training sets, item sets (their recoloured frames) and counterfactual sets: `crops` is
    the crops of the set's own `pixels` at its `positions`; without --crops there is none."""
    from data_gen.cli import main

    base = ["--image-size", "16", "--law", "reciprocity", "--seed", "3"]
    if kind == "generate":
        args = ["generate", "polis", "--episodes", "2", "--frames", "13", *base]
    else:
        args = ["items", "polis", "--items", "1", *base]
        args += ["--consequence"] if kind == "consequence" else []
    assert main([*args, "--out", str(tmp_path / "a"), "--crops", "6"]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    ds, plain = open_dataset(tmp_path / "a"), open_dataset(tmp_path / "b")
    obs, px, pos = (ds.array(n) for n in ("crops", "pixels", "positions"))
    assert obs.shape[-1] == 6 * (2 + 3 * 36)  # 6 agents
    assert np.array_equal(obs, crop_observation(px, pos, 6))
    assert "crops" not in plain.names  # and the crops change nothing else
    for name in plain.names:
        assert np.array_equal(ds.array(name), plain.array(name)), name


def test_physics_items_carry_the_crops_of_the_discs_as_drawn(tmp_path):
    """Physics (the 2x2's other world): the same observation, with a vanished disc at OFFSCREEN
    (its crop background, its position (-1, -1)), so both worlds' crop models read one layout."""
    from data_gen.cli import main
    from data_gen.physics import OFFSCREEN

    args = ["items", "physics", "--items", "2", "--image-size", "16", "--frames", "24",
            "--t-star-min", "12", "--t-star-max", "20", "--crops", "4"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    ds = open_dataset(tmp_path / "a")
    obs, px, pos, vis = (ds.array(n) for n in ("crops", "pixels", "positions", "visible"))
    shown = np.where(vis[..., None], pos, OFFSCREEN)
    assert (~vis).any() and obs.shape[-1] == 6 * (2 + 3 * 16)
    assert np.array_equal(obs, crop_observation(px, shown, 4))
    gone = obs.reshape(*obs.shape[:2], 6, 50)[~vis]  # (n, 50): the vanished discs' rows
    assert np.all(gone[:, :2] == OFFSCREEN) and np.all(gone[:, 2:] == np.tile(BACKGROUND, 16))
    assert main([*args[:-1], "17", "--out", str(tmp_path / "b")]) == 2  # larger than the frame
    assert not (tmp_path / "b").exists()


def test_a_world_without_frames_or_with_crops_larger_than_them_is_refused():
    with pytest.raises(ValueError, match="--crops 8 needs rendered frames"):
        PolisConfig(image_size=0, crop_size=8)
    with pytest.raises(ValueError, match=r"--crops must be in \[2, --image-size 16\], got 20"):
        PolisConfig(image_size=16, crop_size=20)
    with pytest.raises(ValueError, match=r"--crops must be in \[2, --image-size 16\], got 1"):
        PolisConfig(image_size=16, crop_size=1)
    with pytest.raises(ValueError, match="--crops must be >= 0"):
        PolisConfig(crop_size=-1)
    truth = {"positions": np.full((1, 2, 6, 2), 0.5, np.float32)}
    truth["pixels"] = np.zeros((1, 2, 16, 16, 3), np.uint8)
    polis.add_crops(PolisConfig(image_size=16), truth)
    assert "crops" not in truth


def crop_frames(b: int = 2, k: int = 3, side: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(b, k, 2, generator=g)
    pix = torch.randint(0, 256, (b, k, 3 * side * side), generator=g).float()
    return torch.cat([pos, pix], -1).flatten(1)  # (B, k (2 + 3 C^2))


def test_each_agent_s_token_reads_its_own_crop_and_position_only():
    torch.manual_seed(0)
    enc = CropEncoder(3 * (2 + 48), 3, width=16, depth=2).eval()
    obs = crop_frames()
    base = enc(obs)
    assert base.shape == (2, 3, 16)
    for col in (1, 2 + 5):  # agent 1's y, then one of its pixels
        changed = obs.clone()
        changed[:, 50 + col] += 37.0  # agent 1's row starts at 50
        moved = (enc(changed) - base).abs().amax(-1).amax(0)  # (k,)
        assert moved[1] > 1e-4 and moved[0] == 0 and moved[2] == 0
    same = obs.clone().reshape(2, 3, 50)
    same[:, 0] = same[:, 2]  # agents 0 and 2 show the same crop at the same place
    out = enc(same.flatten(1))
    assert not torch.allclose(out[:, 0], out[:, 2])  # ... and still encode apart (identity)


def test_a_crop_model_trains_end_to_end_and_rebuilds_from_its_checkpoint(tmp_path):
    m = test_variants.small(observation="crops", obs_size=3 * 50, objects=3, embed_dim=12).train()
    obs = torch.stack([crop_frames(seed=s) for s in range(5)], 1)  # (B, T, F)
    out = m.model_step({"obs": obs, "actions": torch.randn(2, 5, 2)}, "train")
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(p.grad is not None for p in m.model.encoder.parameters())
    assert m.model.encode(obs).shape == (2, 5, 12)
    model, _ = test_variants.reloaded(m, tmp_path)
    m.eval()
    assert torch.equal(model.encode(obs), m.model.encode(obs))


def test_bad_crop_configs():
    def build(**kw):
        enc = EncoderConfig(width=8, depth=1)
        args = {"observation": "crops", "obs_size": 3 * 50, "window": 5, "history": 4,
                "objects": 3, "embed_dim": 12, "encoder": enc}  # fmt: skip
        return build_world_model(**{**args, **kw})

    assert build().encoder.side == 4
    with pytest.raises(ValueError, match="not model.objects 2 rows of 2 \\+ 3 C\\^2"):
        build(objects=2, embed_dim=12)
    with pytest.raises(ValueError, match="not model.objects 1 rows"):
        build(objects=1)
    with pytest.raises(ValueError, match="tokens patches needs pixel observations"):
        build(encoder=EncoderConfig(width=8, depth=1, tokens="patches"))
    with pytest.raises(ValueError, match="target oracle needs state observations"):
        build(target="oracle")
    with pytest.raises(ValueError, match="model.observation must be one of pixels, state, crops"):
        build(observation="slots")


def test_fit_refuses_a_model_whose_objects_split_the_crop_rows_otherwise(tmp_path, capsys):
    """7 agents with 6 px crops are 7 rows of 2 + 108 = 110 features, which one object's row
    of 770 = 2 + 3 * 16^2 would also be: only the dataset's manifest tells them apart."""
    from data_gen.cli import main as data_main
    from pwm.cli import main as pwm_main

    data = tmp_path / "d"
    assert data_main(["generate", "polis", "--out", str(data), "--episodes", "2", "--frames", "30",
                      "--image-size", "16", "--agents", "7", "--crops", "6"]) == 0  # fmt: skip
    assert 7 * (2 + 3 * 36) == 2 + 3 * 16**2  # the silent split the check exists for
    capsys.readouterr()
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as e:
        pwm_main(["fit", "-c", "experiments/base.yaml", "-c", "experiments/debug.yaml",
                  f"--data.path={data}", "--data.observation=crops", "--data.world=polis",
                  f"--trainer.logger.init_args.save_dir={runs}"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "set model.objects=7" in err[0], err
    assert not runs.exists()


def test_crop_cue_reads_each_layer_and_refuses_what_it_cannot_read(tmp_path, capsys):
    from data_gen.cli import main as data_main

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import crop_cue

    data = tmp_path / "d"
    assert data_main(["generate", "polis", "--out", str(data), "--episodes", "4", "--frames", "31",
                      "--image-size", "16", "--crops", "4", "--seed", "1"]) == 0  # fmt: skip
    m = test_variants.small(observation="crops", obs_size=6 * 50, objects=6, embed_dim=12)
    m.hparams["frame_skip"] = 6
    ckpt = tmp_path / "m.ckpt"
    torch.save({"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict()}, ckpt)
    out = tmp_path / "cue.json"
    assert (
        crop_cue.main([str(ckpt), "--data", str(data), "--episodes", "4", "--out", str(out)]) == 0
    )
    got = json.loads(out.read_text())[str(ckpt)]
    assert set(got) == {"trained", "random"}
    assert set(got["trained"]) == {"cnn", "token", "hidden", "z"}  # the MLP projector's hidden
    assert all(np.isfinite(v) for layer in got.values() for v in layer.values())
    lin = test_variants.small(observation="crops", obs_size=6 * 50, objects=6, embed_dim=12,
                              projector="linear")  # fmt: skip
    lin.hparams["frame_skip"] = 6
    torch.save({"hyper_parameters": dict(lin.hparams), "state_dict": lin.state_dict()}, ckpt)
    args = [str(ckpt), "--data", str(data), "--episodes", "4", "--out", str(out), "--pixels",
            "--mlp-steps", "5"]  # fmt: skip
    assert crop_cue.main(args) == 0
    got = json.loads(out.read_text())
    assert set(got[str(ckpt)]["random"]) == {"cnn", "token", "z"}
    assert set(got["pixels"]) == {"linear", "mlp"} and all(map(np.isfinite, got["pixels"].values()))
    capsys.readouterr()
    for bad in (["--episodes", "1"], ["--data", str(tmp_path / "none")], ["--mlp-steps", "0"]):
        assert crop_cue.main([str(ckpt), "--data", str(data), *bad]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
