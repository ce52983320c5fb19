"""Random structural edits of a dataset's manifest and of an item set's metadata (issue 32).

Each case applies one to three random edits to the JSON tree of `manifest.json` (of a training
dataset) or of `items.json` (of an item set): delete a key or a list entry, replace a value by
one of another type or an out-of-range one (negative, huge, NaN, a path that leaves the
directory, a sibling's value), duplicate, swap or drop list entries, add or rename a key, wrap a
value in a list. Manifest edits are mostly re-sealed (its own checksum recomputed) so that the
schema, not the checksum, has to catch them; item edits are always re-checksummed and
re-sealed. Every case must then be either

- refused with a DatasetError or ProbeError whose message is one line (what `pwm` prints as
  `pwm COMMAND: error: ...`), or
- accepted, and then be a valid dataset: every array loads with the shape and dtype its
  manifest declares and holds exactly the original data, the training loader (or, for an item
  set, every model-free part of the probe: pairings, time-locked prefixes, event windows, named
  tests, doses, baselines) runs, refusing only with a one-line DatasetError/ProbeError/
  ValueError.

Anything else (an IndexError, a KeyError, a TypeError, a traceback of any kind) fails the test,
which names the seed, the case and its edits. Seeded: the same edits on every run.
"""

import copy
import json
import math
import random
import shutil
import traceback
from pathlib import Path

import numpy as np
import pytest

from data_gen.cli import main as data_main
from pwm.data.datamodule import WorldDataModule
from pwm.data.format import DatasetError, open_dataset, sha256_file
from pwm.data.manifest import CHECKSUM, seal
from pwm.probes import baselines
from pwm.probes.config import ProbeError
from pwm.probes.evaluate import check_named_tests
from pwm.probes.items import open_items
from pwm.probes.pipeline import doses_in_context
from pwm.probes.scores import check_windows

SEED = 32
CASES = {"manifest": 300, "items": 300}  # >= 500 in all (issue 32)
ODD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    7,
    2**63,
    -(2**40),
    0.5,
    -2.5,
    math.nan,
    math.inf,
    "",
    "x",
    "../../etc/passwd",
    "/etc/passwd",
    "shard-00000",
    ".hidden",
    "state.npy",
    "float32",
    "object",
    "0" * 64,
    [],
    {},
    [1],
    [-1, 3],
    {"a": 1},
    {"name": "x"},
]


def paths(tree, prefix=()):
    """Every (path, value) in a JSON tree, the root included."""
    yield prefix, tree
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from paths(v, (*prefix, i))


def get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def edit(tree, rng: random.Random) -> str:
    """One random structural edit of `tree`, in place; returns what it did."""
    every = list(paths(tree))
    path, value = rng.choice(every[1:])
    parent, key = get(tree, path[:-1]), path[-1]
    others = [v for p, v in every if p and p != path]
    kind = rng.choice(["delete", "replace", "replace", "sibling", "add", "rename", "wrap",
                       "nudge", "duplicate", "swap", "drop_tail"])  # fmt: skip
    if kind in ("duplicate", "swap", "drop_tail") and not (isinstance(value, list) and value):
        kind = "replace"
    if kind == "nudge" and not isinstance(value, int | float | str):
        kind = "replace"
    if kind == "rename" and not isinstance(parent, dict):
        kind = "delete"
    where = "/".join(map(str, path))
    if kind == "delete":
        del parent[key]
    elif kind == "replace":
        parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
    elif kind == "sibling":
        parent[key] = copy.deepcopy(rng.choice(others))
    elif kind == "add":
        target = value if isinstance(value, dict) else parent
        if isinstance(target, dict):
            target[rng.choice(["extra", "name", "files", "kind", "../x"])] = rng.choice(ODD_VALUES)
        else:
            target.append(copy.deepcopy(rng.choice(ODD_VALUES)))
    elif kind == "rename":
        parent[f"{key}_" if rng.random() < 0.5 else "../" + str(key)] = parent.pop(key)
    elif kind == "wrap":
        parent[key] = [value]
    elif kind == "nudge":
        if isinstance(value, bool):
            parent[key] = not value
        elif isinstance(value, int | float):
            parent[key] = value + rng.choice([-1, 1, -(10**6), 10**12])
        else:
            parent[key] = rng.choice(["../", "", "/"]) + value + rng.choice(["", "/..", "x"])
    elif kind == "duplicate":
        value.append(copy.deepcopy(rng.choice(value)))
    elif kind == "swap":
        i, j = rng.randrange(len(value)), rng.randrange(len(value))
        value[i], value[j] = value[j], value[i]
    else:
        del value[rng.randrange(len(value)) :]
    return f"{kind} {where}"


def one_line(error: Exception) -> bool:
    text = str(error)
    return bool(text.strip()) and "\n" not in text


@pytest.fixture(scope="module")
def originals(toy_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    items = root / "items_original"
    argv = ["items", "physics", "--out", str(items), "--items", "3", "--frames", "12"]
    assert data_main([*argv, "--t-star-min", "4", "--t-star-max", "7", "--image-size", "32"]) == 0
    ds = open_dataset(toy_dataset)
    arrays = {name: ds.array(name) for name in ds.names}
    return root, toy_dataset, items, arrays


def check_dataset_use(path: Path, ds, arrays: dict) -> None:
    """An accepted dataset must be the original data, and its loader must run or refuse."""
    assert sorted(ds.names) == sorted(arrays)
    assert ds.num_episodes == len(next(iter(arrays.values())))
    for name, want in arrays.items():
        got = ds.array(name)
        assert got.shape == (ds.num_episodes, *ds.shape(name))
        assert str(got.dtype) == ds.manifest["arrays"][name]["dtype"]
        assert np.array_equal(got, want)
    try:
        dm = WorldDataModule(str(path), observation="state", window=4, batch_size=8)
        batch = next(iter(dm.val_dataloader()))
        assert batch["obs"].shape[1:] == (4, ds.shape("state")[1])
    except (DatasetError, ValueError) as e:
        assert one_line(e), e


def check_items_use(path: Path) -> None:
    """An accepted item set: every model-free part of the probe runs or refuses in one line."""
    items = open_items(path)
    try:
        pairings = items.pairings()
        obs = items.per_item("pixels")
        for p in pairings:
            items.prefix_matched(p, obs)
        check_windows(items.t_star, items.num_frames, 4, 4, str(path))
        check_named_tests(items)
        doses_in_context(items, pairings, 4)
        baselines.curves(items.dataset, items.episodes)
        baselines.ideal_observer(items.column("ideal_surprisal", float))
        assert len(items.implausible) == len(items.items)
    except ProbeError as e:
        assert one_line(e), e


def run_case(kind: str, case: int, originals) -> tuple[str, list[str]]:
    """Apply a seeded random edit; 'refused' or 'accepted' (checked), else the test fails."""
    root, toy, items, arrays = originals
    rng = random.Random(f"{SEED}-{kind}-{case}")
    work = root / f"{kind}-{case % 2}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(toy if kind == "manifest" else items, work)
    manifest = json.loads((work / "manifest.json").read_text())
    if kind == "manifest":
        tree = copy.deepcopy(manifest)
        done = [edit(tree, rng) for _ in range(rng.randint(1, 3))]
        if not isinstance(tree, dict) or rng.random() < 0.8:
            tree = seal(tree) if isinstance(tree, dict) else tree
        (work / "manifest.json").write_text(json.dumps(tree))
    else:
        tree = json.loads((work / "items.json").read_text())
        done = [edit(tree, rng) for _ in range(rng.randint(1, 3))]
        (work / "items.json").write_text(json.dumps(tree))
        manifest["extra_files"]["items.json"] = sha256_file(work / "items.json")
        (work / "manifest.json").write_text(json.dumps(seal(manifest)))
    try:
        if kind == "manifest":
            ds = open_dataset(work)
            check_dataset_use(work, ds, arrays)
        else:
            check_items_use(work)
    except (DatasetError, ProbeError) as e:
        assert one_line(e), (kind, case, done, str(e))
        return "refused", done
    except Exception:
        pytest.fail(f"seed {SEED}, {kind} case {case}, edits {done}:\n{traceback.format_exc()}")
    return "accepted", done


def test_random_structural_edits_are_refused_in_one_line_or_are_valid(originals):
    outcomes = {kind: {"refused": 0, "accepted": 0} for kind in CASES}
    accepted = []
    for kind, n in CASES.items():
        for case in range(n):
            outcome, done = run_case(kind, case, originals)
            outcomes[kind][outcome] += 1
            if outcome == "accepted":
                accepted.append((kind, case, done))
    total = sum(sum(o.values()) for o in outcomes.values())
    print(f"fuzz: {total} cases, {outcomes}")  # shown with -s; the README quotes it
    assert total >= 500
    for kind in CASES:  # the edits are structural enough that most are refused
        assert outcomes[kind]["refused"] > outcomes[kind]["accepted"], outcomes


def test_the_edits_are_seeded():
    tree = {"a": [1, 2, {"b": "c"}], "d": {"e": 1.5}}
    runs = []
    for _ in range(2):
        t, rng = copy.deepcopy(tree), random.Random(SEED)
        runs.append(([edit(t, rng) for _ in range(5)], json.dumps(t)))
    assert runs[0] == runs[1]


def test_a_manifest_without_its_checksum_still_loads_checked(originals, tmp_path):
    """Datasets written before manifests carried their own checksum load, and every other check
    still applies to them."""
    _, toy, _, arrays = originals
    old = Path(shutil.copytree(toy, tmp_path / "old"))
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest[CHECKSUM]
    (old / "manifest.json").write_text(json.dumps(manifest))
    check_dataset_use(old, open_dataset(old), arrays)
    manifest["shards"][0]["name"] = "../../elsewhere"
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="shards\\[0\\].name must be shard-00000"):
        open_dataset(old)
