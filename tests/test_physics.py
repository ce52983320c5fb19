"""The physics world against its spec (DESIGN 3.2, 3.4) and `pwm generate physics`."""

import json

import numpy as np
import pytest

from data_gen.cli import main as data_main
from data_gen.physics import (
    EgoPolicy,
    PhysicsConfig,
    advance,
    initial_state,
    rollout,
    simulate,
)
from pwm.data.format import open_dataset

CFG = PhysicsConfig(frames=80, image_size=32)


@pytest.fixture(scope="module")
def traj():
    rng = np.random.default_rng(7)
    pos, vel = initial_state(CFG, rng, 48)
    return rollout(pos, vel, CFG.radius, CFG.frames, EgoPolicy(CFG, rng, 48))


def kicked(traj):
    """Velocities right after frame t's ego force, (n, T, N, 2)."""
    v = traj["velocities"].copy()
    v[:, :, 0] += traj["actions"]
    return v


def test_energy_conserved_by_every_move(traj):
    ke = lambda v: 0.5 * (v**2).sum((-1, -2))  # noqa: E731
    before, after = ke(kicked(traj)[:, :-1]), ke(traj["velocities"][:, 1:])
    assert traj["collisions"].any() and traj["wall_hits"].any()
    np.testing.assert_allclose(after, before, rtol=1e-6)


def test_momentum_conserved_across_disc_collisions(traj):
    moves = ~traj["wall_hits"][:, :-1].any(-1) & traj["collisions"][:, :-1].any((-1, -2))
    assert moves.sum() > 20
    p_before = kicked(traj)[:, :-1].sum(-2)[moves]  # (m, 2)
    p_after = traj["velocities"][:, 1:].sum(-2)[moves]
    scale = np.abs(traj["velocities"]).sum(-1).sum(-1).max()
    np.testing.assert_allclose(p_after, p_before, rtol=0, atol=1e-6 * scale)


def test_head_on_collision_swaps_velocities():
    pos = np.array([[[0.3, 0.5], [0.7, 0.5]]])
    vel = np.array([[[0.2, 0.0], [-0.15, 0.0]]])
    col, walls = advance(pos, vel, 0.05)
    assert col[0, 0, 1] and col[0, 1, 0] and not walls.any()
    np.testing.assert_allclose(vel[0], [[-0.15, 0.0], [0.2, 0.0]], atol=1e-15)


def test_no_overlap_and_inside_box(traj):
    p, r = traj["positions"], CFG.radius
    d = np.linalg.norm(p[:, :, :, None] - p[:, :, None], axis=-1)
    d[..., np.arange(6), np.arange(6)] = np.inf
    assert d.min() >= 2 * r - 1e-9
    assert p.min() >= r - 1e-9 and p.max() <= 1 - r + 1e-9


def test_events_are_recorded_consistently(traj):
    col = traj["collisions"]
    assert np.array_equal(col, np.swapaxes(col, -1, -2))
    assert not col[..., np.arange(6), np.arange(6)].any()
    # a disc whose velocity changed beyond the ego's force took part in an event
    dv = np.linalg.norm(traj["velocities"][:, 1:] - kicked(traj)[:, :-1], axis=-1)
    events = col[:, :-1].any(-1) | traj["wall_hits"][:, :-1]
    assert not (dv > 1e-12)[~events].any()


def test_ego_force_is_smooth_and_bounded(traj):
    a = traj["actions"]
    assert np.linalg.norm(a, axis=-1).max() <= CFG.force_max + 1e-12
    assert np.abs(a).mean() > 0.1 * CFG.force_max
    assert np.abs(np.diff(a, axis=1)).mean() < 0.5 * np.abs(a).mean()


def test_explicit_generator_no_global_state():
    one = simulate(CFG, np.random.default_rng(3), 4)
    np.random.seed(123)  # noqa: NPY002 (the global state must not matter)
    two = simulate(CFG, np.random.default_rng(3), 4)
    other = simulate(CFG, np.random.default_rng(4), 4)
    for k in one:
        assert one[k].tobytes() == two[k].tobytes()
    assert not np.array_equal(one["positions"], other["positions"])


def test_arrays_layout():
    arr = simulate(CFG, np.random.default_rng(0), 3)
    T, N = CFG.frames, CFG.num_objects
    assert arr["pixels"].shape == (3, T, 32, 32, 3) and arr["pixels"].dtype == np.uint8
    assert arr["state"].shape == (3, T, 6 * N) and arr["state"].dtype == np.float32
    assert arr["actions"].shape == (3, T, 2) and arr["actions"].dtype == np.float32
    s = arr["state"].reshape(3, T, N, 6)
    np.testing.assert_allclose(s[..., :2], arr["positions"], rtol=1e-6)
    np.testing.assert_allclose(s[..., 2:4], arr["velocities"], rtol=1e-5, atol=1e-9)
    assert (s[..., 4:] == 0).all()


GEN = ["--episodes", "130", "--frames", "6", "--image-size", "16", "--seed", "5"]


def shard_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("shard-*/*"))}


def test_generate_is_deterministic_across_workers_and_shards(tmp_path):
    run = lambda name, *extra: data_main(
        ["generate", "physics", "--out", str(tmp_path / name), *GEN, *extra]
    )  # noqa: E731
    assert run("a") == 0
    assert run("b", "--workers", "2") == 0
    assert run("c", "--shard", "1", "--num-shards", "2") == 0
    assert not (tmp_path / "c" / "manifest.json").exists()
    assert run("c", "--shard", "0", "--num-shards", "2") == 0
    ref = shard_bytes(tmp_path / "a")
    assert len(ref) == 3 * 8  # 3 shards x (7 arrays + checksums)
    assert shard_bytes(tmp_path / "b") == ref == shard_bytes(tmp_path / "c")
    ds = open_dataset(tmp_path / "a")
    assert ds.world == "physics" and ds.num_episodes == 130
    assert ds.manifest["config"]["num_objects"] == 6 and ds.manifest["seed"] == 5
    assert ds.shape("pixels") == (6, 16, 16, 3) and ds.shape("state") == (6, 36)
    assert ds.shards("pixels")[0].flags["C_CONTIGUOUS"]
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["shards"] == ds.manifest["shards"]


def test_state_links_add_zero_link_columns_and_change_nothing_else(tmp_path):
    run = lambda name, *extra: data_main(
        ["generate", "physics", "--out", str(tmp_path / name), *GEN, *extra]
    )  # noqa: E731
    assert run("plain") == 0 and run("links", "--state-links") == 0
    plain, links = open_dataset(tmp_path / "plain"), open_dataset(tmp_path / "links")
    layout = ["x", "y", "vx", "vy", "cue_c", "cue_d"]
    assert plain.manifest["state_layout"] == layout
    assert links.manifest["state_layout"] == layout + [f"link_{j}" for j in range(6)]
    assert links.shape("state") == (6, 72) and plain.shape("state") == (6, 36)
    s0, s1 = plain.array("state"), links.array("state")
    per0, per1 = s0.reshape(*s0.shape[:2], 6, 6), s1.reshape(*s1.shape[:2], 6, 12)
    np.testing.assert_array_equal(per1[..., :6], per0)  # same episodes, same first features
    assert (per1[..., 6:] == 0).all() and (per1[..., :4] != 0).any()
    np.testing.assert_array_equal(links.array("pixels"), plain.array("pixels"))


def test_items_with_state_links_match_polis_links_layout(tmp_path):
    flags = ["--items", "2", "--image-size", "16", "--seed", "1"]
    assert data_main(["items", "physics", "--out", str(tmp_path / "p"), *flags]) == 0
    assert data_main(["items", "physics", "--out", str(tmp_path / "l"), *flags,
                      "--state-links"]) == 0  # fmt: skip
    plain, links = open_dataset(tmp_path / "p"), open_dataset(tmp_path / "l")
    s0, s1 = plain.array("state"), links.array("state")
    per1 = s1.reshape(*s1.shape[:2], 6, 12)
    np.testing.assert_array_equal(per1[..., :6], s0.reshape(*s0.shape[:2], 6, 6))
    assert (per1[..., 6:] == 0).all()
    assert links.manifest["state_layout"][6:] == [f"link_{j}" for j in range(6)]


@pytest.mark.parametrize(
    "args, option",
    [
        (["--num-objects", "0"], "--num-objects"),
        (["--num-objects", "13"], "--num-objects"),
        (["--radius", "0.3"], "--radius"),
        (["--radius", "-0.1"], "--radius"),
        (["--num-objects", "12", "--radius", "0.11"], "--radius"),
        (["--image-size", "8"], "--image-size"),
        (["--frames", "-3"], "--frames"),
        (["--episodes", "-1"], "--episodes"),
        (["--speed", "-1"], "--speed"),
    ],
)
def test_bad_input_one_line_error_before_any_work(tmp_path, capsys, args, option):
    out = tmp_path / "never"
    assert data_main(["generate", "physics", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and option in err and "error" in err
    assert not out.exists()


def test_existing_nonempty_out_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    argv = ["generate", "physics", "--out", str(out), "--episodes", "5", *GEN[2:]]
    assert data_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--overwrite" in err
    assert (out / "notes.txt").read_text() == "keep me"
    assert data_main([*argv, "--overwrite"]) == 0
    assert open_dataset(out).num_episodes == 5
