"""The shared on-disk format: atomic, checksummed, deterministic, resumable (DESIGN 3.4)."""

import json

import numpy as np
import pytest

from data_gen.writer import generate_dataset
from pwm.data import DatasetError, WindowDataset, open_dataset, split_episodes
from pwm.data.datamodule import action_blocks
from pwm.data.format import prepare_output_dir, shard_name


def fake_world(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "pixels": rng.integers(0, 255, size=(n, 10, 16, 16, 3), dtype=np.uint8),
        "state": rng.normal(size=(n, 10, 6)).astype(np.float32),
        "actions": rng.normal(size=(n, 10, 2)).astype(np.float32),
    }


def make(tmp_path, name="ds", episodes=10, workers=1, **kw):
    out = prepare_output_dir(tmp_path / name, False, {"test": name})
    done = generate_dataset(
        out,
        fake_world,
        {"world": "fake"},
        episodes,
        seed=3,
        episodes_per_shard=4,
        workers=workers,
        **kw,
    )
    return out, done


def shard_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("shard-*/*"))}


def test_roundtrip_manifest_and_memmap(tmp_path):
    out, done = make(tmp_path)
    assert done
    ds = open_dataset(out)
    m = ds.manifest
    assert m["world"] == "fake" and m["num_episodes"] == 10 and m["num_shards"] == 3
    assert m["arrays"]["pixels"] == {"shape": [10, 16, 16, 3], "dtype": "uint8"}
    assert ds.array("state").shape == (10, 10, 6)
    assert isinstance(ds.shards("pixels")[0], np.memmap)
    assert ds.locate(9) == (2, 1)


def test_same_seed_same_bytes_whatever_the_workers_or_job_split(tmp_path):
    one, _ = make(tmp_path, "one")
    two, _ = make(tmp_path, "two", workers=2)
    split = prepare_output_dir(tmp_path / "split", False, {"test": "split"})
    kw = dict(episodes_per_shard=4, num_shards=2)
    assert not generate_dataset(split, fake_world, {"world": "fake"}, 10, 3, shard=1, **kw)
    assert generate_dataset(split, fake_world, {"world": "fake"}, 10, 3, shard=0, **kw)
    assert shard_bytes(one) == shard_bytes(two) == shard_bytes(split)


def test_missing_manifest_is_not_a_dataset(tmp_path):
    out, _ = make(tmp_path)
    (out / "manifest.json").unlink()
    with pytest.raises(DatasetError, match="no manifest.json"):
        open_dataset(out)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupted_shard_is_refused_by_name(tmp_path, damage):
    out, _ = make(tmp_path)
    path = out / shard_name(1) / "pixels.npy"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-100]
    else:
        data[-7] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="shard-00001"):
        open_dataset(out)


def test_interrupted_generation_resumes(tmp_path):
    out, _ = make(tmp_path)
    reference = shard_bytes(out)
    (out / "manifest.json").unlink()
    import shutil

    shutil.rmtree(out / shard_name(2))  # as if killed before the last shard
    with pytest.raises(DatasetError):
        open_dataset(out)
    out2 = prepare_output_dir(out, False, {"test": "ds"})  # same config: resume, not refuse
    assert generate_dataset(out2, fake_world, {"world": "fake"}, 10, 3, episodes_per_shard=4)
    assert shard_bytes(out) == reference
    open_dataset(out)


def test_output_dir_rules(tmp_path):
    out, _ = make(tmp_path)
    with pytest.raises(DatasetError, match="--overwrite"):
        prepare_output_dir(out, False, {"test": "ds"})
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        prepare_output_dir(other, False, {"a": 1})
    assert (other / "keep.txt").exists()  # nothing lost
    prepare_output_dir(out, True, {"test": "ds"})
    assert not (out / "manifest.json").exists()


def test_no_pickle_anywhere(tmp_path):
    out, _ = make(tmp_path)
    for path in out.glob("shard-*/*.npy"):
        np.load(path, allow_pickle=False)
    json.loads((out / "manifest.json").read_text())


def test_episode_split_is_seeded_and_disjoint():
    train, val = split_episodes(50, 0.2, seed=1)
    assert len(val) == 10 and len(train) == 40 and not set(train) & set(val)
    assert np.array_equal(split_episodes(50, 0.2, seed=1)[1], val)
    assert not np.array_equal(split_episodes(50, 0.2, seed=2)[1], val)


def test_windows_stay_inside_their_episode(tmp_path):
    out, _ = make(tmp_path)
    ds = WindowDataset(out, "state", np.array([0, 5]), window=4, stride=2)
    assert len(ds) == 2 * 4  # starts 0, 2, 4, 6 of 10 frames
    full = open_dataset(out).array("state")
    sample = ds[5]  # episode 5, start 2
    assert np.array_equal(sample["obs"].numpy(), full[5, 2:6])
    assert sample["actions"].shape == (4, 2)


def test_frame_skip_windows_step_every_s_frames_with_action_blocks(tmp_path):
    out, _ = make(tmp_path)  # 10 frames per episode, 2 action features
    ds = WindowDataset(out, "state", np.array([3]), window=3, stride=3, frame_skip=3, offset=1)
    assert list(ds.starts) == [1]  # frames 1, 4, 7; a start at 4 would need frame 10
    full, acts = open_dataset(out).array("state"), open_dataset(out).array("actions")
    sample = ds[0]
    np.testing.assert_array_equal(sample["obs"].numpy(), full[3, [1, 4, 7]])
    blocks = sample["actions"].numpy()  # (3 steps, 3 frames x 2 features)
    np.testing.assert_array_equal(blocks[0], acts[3, 1:4].ravel())
    np.testing.assert_array_equal(blocks[1], acts[3, 4:7].ravel())
    np.testing.assert_array_equal(blocks[2], np.r_[acts[3, 7:10].ravel()])
    last = action_blocks(acts[3], np.array([8]), 3)  # frames 8, 9 and one past the end
    np.testing.assert_array_equal(last[0], np.r_[acts[3, 8:10].ravel(), 0, 0])
    with pytest.raises(DatasetError, match="spans 11 frames"):
        WindowDataset(out, "state", np.array([3]), window=4, frame_skip=3, offset=1)
