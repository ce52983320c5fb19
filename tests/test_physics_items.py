"""Physics VoE items (DESIGN 4.2): every condition against its declared spec, shared prefixes,
metadata schema, determinism and bad input of `pwm items physics`."""

import numpy as np
import pytest

from data_gen.cli import main as data_main
from data_gen.physics_items import COMPARISONS, CONDITIONS, IDEAL_SURPRISAL_VIOLATION, NAMES
from data_gen.render import PALETTE
from pwm.data.format import open_dataset

R, SPEED = 0.06, 0.015  # the defaults the items are made with
ARGS = ["--items", "20", "--image-size", "32", "--seed", "11"]


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    out = tmp_path_factory.mktemp("items") / "physics"
    assert data_main(["items", "physics", "--out", str(out), *ARGS]) == 0
    ds = open_dataset(out)
    meta = ds.read_json("items.json")
    arrays = {name: ds.array(name) for name in ds.names}
    return out, meta, arrays


def groups(meta):
    """{group_id: {condition: item}}"""
    out = {}
    for item in meta["items"]:
        out.setdefault(item["group_id"], {})[item["condition"]] = item
    return out


def test_schema(items):
    _, meta, arrays = items
    assert meta["world"] == "physics"
    assert set(meta["conditions"]) == set(CONDITIONS)
    assert all(
        c["label"] in ("plausible", "implausible") and c["doc"] for c in meta["conditions"].values()
    )
    for comp in meta["comparisons"]:
        assert set(comp) == {"name", "implausible", "plausible"}
        assert all(meta["conditions"][c]["label"] == "implausible" for c in comp["implausible"])
        assert all(meta["conditions"][c]["label"] == "plausible" for c in comp["plausible"])
    assert {c["name"] for c in COMPARISONS} >= {
        "teleport",
        "vanish",
        "pass_through",
        "acceleration",
        "selectivity",
    }
    assert len(meta["items"]) == 20 * len(NAMES) == len(arrays["pixels"])
    g = groups(meta)
    assert len(g) == 20 and all(set(v) == set(NAMES) for v in g.values())
    for item in meta["items"]:
        assert item["item_id"] == item["episode"]
        assert item["label"] == meta["conditions"][item["condition"]]["label"]
        want = IDEAL_SURPRISAL_VIOLATION if item["label"] == "implausible" else 0.0
        assert item["ideal_surprisal"] == want
        assert 16 <= item["t_star"] <= 32 and item["pixel_l2_change"] >= 0
    for members in g.values():
        assert len({i["t_star"] for i in members.values()}) == 1


def test_identical_prefix_and_divergence_at_t_star(items):
    _, meta, a = items
    for members in groups(meta).values():
        lawful = members["lawful"]
        e0, t = lawful["episode"], lawful["t_star"]
        for name, item in members.items():
            e = item["episode"]
            for key in ("pixels", "state", "positions", "velocities"):
                assert np.array_equal(a[key][e, :t], a[key][e0, :t]), (name, key)
            assert np.array_equal(a["actions"][e], a["actions"][e0])
            if name != "lawful":
                assert not np.array_equal(a["pixels"][e, t], a["pixels"][e0, t]), name


def test_pixel_change_recorded(items):
    _, meta, a = items
    for item in meta["items"]:
        e, t = item["episode"], item["t_star"]
        px = a["pixels"][e].astype(float)
        assert item["pixel_l2_change"] == pytest.approx(np.linalg.norm(px[t] - px[t - 1]))


def kinetic(v):
    return 0.5 * (v**2).sum((-1, -2))


def energy_broken(a, e, t):
    """Whether kinetic energy changed over the move t-1 -> t beyond the ego's recorded force
    (relative 1e-6: the stored actions are float32)."""
    v = a["velocities"][e, t - 1].copy()
    v[0] += a["actions"][e, t - 1]
    before, after = kinetic(v), kinetic(a["velocities"][e, t])
    return abs(after - before) > 1e-6 * before


def min_pair_distance(p):
    d = np.linalg.norm(p[:, :, None] - p[:, None], axis=-1)
    d[:, np.arange(p.shape[1]), np.arange(p.shape[1])] = np.inf
    return d.min()


def violated(name, a, item, members):
    """Whether item shows the violation of condition `name` (applied to any item of the group)."""
    e, t = item["episode"], item["t_star"]
    k = members[name]["object"]
    p, vis = a["positions"][e], a["visible"][e]
    if name == "lawful":
        return False
    if name == "teleport":
        return np.linalg.norm(p[t, k] - p[t - 1, k]) > 0.3 - 2 * SPEED
    if name == "vanish":
        return not vis[t:, k].any()
    if name == "pass_through":
        i, j = k, members[name]["partner"]
        return np.linalg.norm(p[t : t + 4, i] - p[t : t + 4, j], axis=-1).min() < 2 * R - 1e-6
    if name == "acceleration":
        return energy_broken(a, e, t)
    if name == "visual_control":
        return not np.array_equal(a["colors"][e, t, k], a["colors"][e, t - 1, k])
    raise KeyError(name)


def lawful_trajectory(a, e):
    """All discs visible, never overlapping, energy conserved by every move, colours fixed."""
    T = a["positions"].shape[1]
    energy = [not energy_broken(a, e, t) for t in range(1, T)]
    return (
        a["visible"][e].all()
        and min_pair_distance(a["positions"][e]) >= 2 * R - 1e-9
        and all(energy)
    )


@pytest.mark.parametrize("name", NAMES)
def test_condition_against_its_spec(items, name):
    """Each implausible item contains its violation and its lawful pair does not; plausible ones
    are lawful trajectories."""
    _, meta, a = items
    for members in groups(meta).values():
        item, lawful = members[name], members["lawful"]
        e = item["episode"]
        if name == "lawful":
            assert lawful_trajectory(a, e)
            assert (a["colors"][e] == PALETTE[: a["colors"].shape[2]]).all()
            # the group's event: the pair collides naturally in the move t* - 1 -> t*
            i, j, t = (
                members["pass_through"]["object"],
                members["pass_through"]["partner"],
                item["t_star"],
            )
            assert a["collisions"][e, t - 1, i, j]
            continue
        assert violated(name, a, item, members), name
        assert not violated(name, a, lawful, members), f"lawful pair of {name} shows it"
        if name == "visual_control":
            assert np.array_equal(a["positions"][e], a["positions"][lawful["episode"]])
            assert lawful_trajectory(a, e)
        else:
            assert item["label"] == "implausible"


def test_visual_control_uses_an_unused_colour(items):
    _, meta, a = items
    n = a["colors"].shape[2]
    for item in meta["items"]:
        if item["condition"] == "visual_control":
            new = a["colors"][item["episode"], item["t_star"], item["object"]]
            assert not (PALETTE[:n] == new).all(-1).any()


def test_items_deterministic_across_workers_and_shards(items, tmp_path):
    out, _, _ = items
    two = tmp_path / "workers"
    assert data_main(["items", "physics", "--out", str(two), *ARGS, "--workers", "2"]) == 0
    split = tmp_path / "split"
    for i in (1, 0):
        argv = ["items", "physics", "--out", str(split), *ARGS, "--shard", str(i)]
        assert data_main([*argv, "--num-shards", "2"]) == 0
    ref = sorted(p.relative_to(out) for p in out.glob("shard-*/*"))
    assert len(ref) > 2 * 10  # two shards
    for other in (two, split):
        for rel in [*ref, "items.json"]:
            assert (other / rel).read_bytes() == (out / rel).read_bytes(), (other, rel)


@pytest.mark.parametrize(
    "args, option",
    [
        (["--num-objects", "2"], "--num-objects"),
        (["--t-star-max", "60"], "--t-star-max"),
        (["--frames", "-1"], "--frames"),
        (["--items", "0"], "--items"),
    ],
)
def test_bad_input(tmp_path, capsys, args, option):
    out = tmp_path / "never"
    assert data_main(["items", "physics", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and option in err
    assert not out.exists()
