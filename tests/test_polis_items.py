"""Polis VoE items: the events happen as labelled, pairs share what the design says they share,
the ideal observer ranks them as the laws imply, and `pwm items polis` writes a valid item set."""

import numpy as np
import pytest

from data_gen import agents, cli
from data_gen.polis_config import PolisConfig
from data_gen.polis_items import (
    CONDITIONS,
    IMPOSSIBLE,
    ITEMS_FILE,
    KS,
    M_GROUP,
    ItemsConfig,
    names_of,
    read_items,
    simulate_items,
)
from pwm.data.format import open_dataset

CFG = ItemsConfig(world=PolisConfig(frames=480, image_size=32))  # law justice: every condition
NAMES = names_of("justice")
G = len(NAMES)
EGO = 0


@pytest.fixture(scope="module")
def items():
    return simulate_items(CFG, np.random.default_rng(0), 8 * G)  # 8 groups, every K twice


def group(items, name):
    """Episode indices of condition `name`, one per group."""
    return np.arange(NAMES.index(name), len(items["item_condition"]), G)


def test_layout_and_k(items):
    assert items["pixels"].shape == (8 * G, 76, 32, 32, 3)
    np.testing.assert_array_equal(items["item_condition"], np.tile(np.arange(G), 8))
    assert sorted(items["item_K"][group(items, "trust_D")]) == sorted(KS * 2)
    assert np.all(items["item_b"] == EGO)  # B is the ego in every item
    for name in M_GROUP:  # the M-group shares its base, hence its K and agents
        np.testing.assert_array_equal(items["item_K"][group(items, name)],
                                      items["item_K"][group(items, "trust_C")])  # fmt: skip
        np.testing.assert_array_equal(items["item_a"][group(items, name)],
                                      items["item_a"][group(items, "trust_C")])  # fmt: skip
    assert np.all(items["item_K"][group(items, "stranger_D")] == 0)


def test_events_happen_as_labelled_at_natural_meetings(items):
    t, L = CFG.before, CFG.world.round_len
    expect_a = {"trust_C": 1, "trust_D": 0, "provoked_D": 0, "provoked_C": 1, "visual_C": 1,
                "forgive_lawful": 0, "forgive_acausal": 1, "habitual_D": 0, "stranger_D": 0,
                "noisy_D": 0, "norm_D": 0}  # fmt: skip
    for name in NAMES:
        for e in group(items, name):
            a, b = items["item_a"][e], items["item_b"][e]
            if name == "teleport":
                jump = np.linalg.norm(items["positions"][e, t, a] - items["positions"][e, t - 1, a])
                assert jump >= 0.3
                continue
            assert items["partner"][e, t, a] == b, name  # the pair meets at t*
            if name in expect_a:
                assert items["executed"][e, t, a] == expect_a[name], name
            if name in M_GROUP:  # the ego cooperates at the event in every M-group item
                assert items["executed"][e, t, b] == agents.C, name
            if name.startswith("forgive"):  # the ego betrayed A at their last meeting
                assert items["partner"][e, t - L, a] == b
                assert items["executed"][e, t - L, b] == agents.D
                assert items["executed"][e, t - L, a] == agents.C
            if name.startswith("provoked"):  # the ego provoked A at their last meeting
                assert items["executed"][e, t - L, b] == agents.D
            if name.startswith("trust"):  # K meetings, every one mutual cooperation
                k = items["item_K"][e]
                frames = t - L * np.arange(1, k + 1)
                assert np.all(items["partner"][e, frames, a] == b)
                assert np.all(items["executed"][e, frames][:, [a, b]] == agents.C)
    for e in group(items, "norm_D"):
        assert items["event"][e, t, items["item_a"][e]] == agents.JUSTIFIED
    for e in group(items, "provoked_D"):
        assert items["event"][e, t, items["item_a"][e]] == agents.RETALIATION


def test_pairs_share_prefix_and_m1_shares_outcome(items):
    t, L = CFG.before, CFG.world.round_len
    px = items["pixels"]
    for g in range(8):
        tc, td, pd, pc, vis, tp, fl, fa = (g * G + i for i in range(8))
        for x, y in ((tc, td), (pd, pc), (tc, vis), (tc, tp), (fl, fa)):
            assert np.array_equal(px[x, :t], px[y, :t])  # identical prefix
            assert not np.array_equal(px[x, t], px[y, t])  # the event is visible at t*
        assert not np.array_equal(px[td, :t], px[pd, :t])  # M1: the histories differ ...
        assert np.array_equal(px[td, t : t + L], px[pd, t : t + L])  # ... the outcome does not
        assert np.array_equal(items["state"][td, t : t + L], items["state"][pd, t : t + L])


def test_ideal_observer_ranks_items_as_the_laws_imply(items):
    s = {name: items["item_surprisal"][group(items, name)] for name in NAMES}
    assert np.all(s["trust_D"] > s["provoked_D"] + 2)  # betrayal >> retaliation (M1)
    assert np.all(s["trust_D"] > s["trust_C"] + 2)  # M2
    assert np.all(s["provoked_C"] > s["provoked_D"] + 2)  # R
    assert np.all(s["teleport"] == IMPOSSIBLE) and np.all(s["forgive_acausal"] == IMPOSSIBLE)
    np.testing.assert_allclose(s["trust_D"], -np.log(CFG.world.tremble), rtol=1e-5)  # A's part
    np.testing.assert_allclose(s["visual_C"], s["trust_C"])
    assert np.all(s["noisy_D"] < s["trust_D"])  # a noisy partner's tremble is less surprising
    for name in NAMES:
        assert (CONDITIONS[name][0] == "implausible") == (np.median(s[name]) > 2), name


def test_visual_control_changes_only_colour(items):
    t = CFG.before
    for e in group(items, "visual_C"):
        a, c = items["item_a"][e], items["colors"][e].astype(int)  # (T, N, 3)
        changed = (c != c[0]).any(-1)  # (T, N)
        assert not changed[:t].any() and changed[t:, a].all()
        assert changed.sum() == changed[t:, a].sum()  # nobody else, never before t*
        trust_c = e - NAMES.index("visual_C") + NAMES.index("trust_C")
        np.testing.assert_array_equal(items["state"][e], items["state"][trust_c])


def test_cli_items_schema_and_determinism(tmp_path):
    base = ["items", "polis", "--items", "2", "--image-size", "16"]
    assert cli.main([*base, "--out", str(tmp_path / "a")]) == 0
    assert cli.main([*base, "--out", str(tmp_path / "b"), "--workers", "2"]) == 0
    doc = read_items(tmp_path / "a")
    assert doc == read_items(tmp_path / "b")
    assert doc["world"] == "polis" and set(doc["conditions"]) == set(NAMES)
    names = {c["name"]: c for c in doc["comparisons"]}
    assert names["M1"] == {"name": "M1", "implausible": ["trust_D"], "plausible": ["provoked_D"]}
    assert names["M1C"] == {"name": "M1C", "implausible": ["provoked_C"], "plausible": ["trust_C"]}
    assert names["Q"]["implausible"] == ["trust_D", "provoked_C"] and "M2_K8" in names
    assert doc["law"] == "justice" and doc["ego_is_b"]
    assert len(doc["items"]) == 2 * G
    item = doc["items"][1]
    assert item["condition"] == "trust_D" and item["label"] == "implausible"
    assert set(item) >= {"item_id", "episode", "group_id", "t_star", "ideal_surprisal",
                         "pixel_l2_change", "K", "agent_a", "agent_b"}  # fmt: skip
    assert (tmp_path / "a" / ITEMS_FILE).exists()


def test_reciprocity_items_have_no_norm_control(tmp_path):
    assert cli.main(["items", "polis", "--items", "2", "--image-size", "16", "--law",
                     "reciprocity", "--out", str(tmp_path / "r")]) == 0  # fmt: skip
    doc = read_items(tmp_path / "r")
    assert doc["law"] == "reciprocity" and "norm_D" not in doc["conditions"]
    assert len(doc["items"]) == 2 * len(names_of("reciprocity")) == 2 * (G - 1)
    assert "control_norm" not in {c["name"] for c in doc["comparisons"]}


def test_items_with_state_links_carry_the_partner_one_hot(tmp_path):
    flags = ["--items", "2", "--image-size", "16", "--law", "reciprocity", "--state-links"]
    assert cli.main(["items", "polis", *flags, "--out", str(tmp_path / "r")]) == 0
    ds = open_dataset(tmp_path / "r")
    assert ds.manifest["state_layout"][6:] == [f"link_{j}" for j in range(6)]
    state, partner = ds.array("state"), ds.array("links")
    hot = state.reshape(*state.shape[:2], 6, 12)[..., 6:]
    assert (hot.sum(-1) == (partner >= 0)).all() and (partner >= 0).any()
    for x in read_items(tmp_path / "r")["items"]:  # A and B are linked at the event
        if x["condition"] in ("trust_D", "provoked_D"):
            assert hot[x["episode"], x["t_star"], x["agent_a"], x["agent_b"]] == 1


def test_cli_items_bad_input(tmp_path, capsys):
    out = tmp_path / "never"
    assert cli.main(["items", "polis", "--out", str(out), "--react-delay", "1"]) == 2
    assert cli.main(["items", "polis", "--out", str(out), "--search-frames", "50"]) == 2
    assert cli.main(["items", "polis", "--out", str(out), "--law", "anarchy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "--react-delay" in err[0] and "--search-frames" in err[1]
    assert "unknown law 'anarchy'" in err[2]
    assert not out.exists()
