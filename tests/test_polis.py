"""Polis, the social world: behaviour tests with scripted histories, laws, populations, CLI.

In the scripted tests agents stand still (no social force, wander or contact force) at fixed
spots, so the same pair meets every round; the ego (agent 0) is the scripted partner, its
executed actions forced round by round.
"""

import json

import numpy as np
import pytest

from data_gen import agents, cli, polis
from data_gen.agents import COOPERATOR, GENEROUS, GRIM, MACHIAVELLIAN, RECIPROCATOR
from data_gen.polis_config import POPULATIONS, PolisConfig
from data_gen.polis_exchange import LAST_DU, Social, exchange
from pwm.data.format import open_dataset

STILL = dict(social=0.0, wander=0.0, contact=0.0, tremble=0.0, noisy_tremble=0.0, ego_explore=0.0)
A, B, MID = [0.4, 0.5], [0.55, 0.5], 0.475


def scenario(cfg, pos, dispositions):
    sc = polis.draw_scenario(cfg, np.random.default_rng(0), 1)
    sc.pos0 = np.asarray(pos, np.float64)[None]
    sc.dispositions = np.asarray(dispositions, np.int8)[None]
    return sc


def play(disposition, partner, witness=None, own="", **changes):
    """Agent 1 of `disposition` against the ego playing the string `partner` (C/D per round);
    returns agent 1's executed actions as a string. `witness`: a third agent near or far.
    `own`: agent 1's executed actions forced in the first rounds (C/D; `.` = its own choice)."""
    kw = {**STILL, "build": 0.5, **changes}
    n = 2 if witness is None else 3
    cfg = PolisConfig(n_agents=n, frames=(len(partner) + 1) * 6, image_size=0, **kw)
    pos = [A, B] + ([] if witness is None else [[MID, 0.75 if witness == "near" else 0.94]])
    sc = scenario(cfg, pos, [COOPERATOR, disposition, COOPERATOR][:n])
    script = polis.Script.natural(cfg, 1)
    script.force[:, 0, 0] = [1 if a == "C" else 0 for a in partner]
    for r, a in enumerate(own):
        if a != ".":
            script.force[r, 0, 1] = 1 if a == "C" else 0
    truth = polis.run(cfg, sc, script)
    return "".join("DC"[a] for a in truth["executed"][0, 6::6, 1])


# With build = 0.5 one cooperation restores trust, so a reciprocator is tit-for-tat.
PARTNER = "CCDCCDDCCC"


@pytest.mark.parametrize(
    "disposition, expected, changes",
    [
        (RECIPROCATOR, "CCCDCCDDCC", {}),  # copies the partner's previous move
        (GENEROUS, "CCCDCCDDCC", {"generosity": 0.0}),  # generosity 0: a reciprocator
        (GENEROUS, "CCCCCCCCCC", {"generosity": 1.0}),  # generosity 1: always forgives
        (GRIM, "CCCDDDDDDD", {}),  # never forgives the first betrayal
        (COOPERATOR, "CCCCCCCCCC", {}),
        (agents.DEFECTOR, "DDDDDDDDDD", {}),
    ],
)
def test_disposition_against_scripted_partner(disposition, expected, changes):
    assert play(disposition, PARTNER, **changes) == expected


@pytest.mark.parametrize(
    "law, expected",
    [
        # agent 1 trembles into D at round 0; the ego retaliates at round 1 (a justified D)
        ("justice", "DCCCCC"),  # a justified D is not answered
        ("reciprocity", "DCDCCC"),  # any D is answered
    ],
)
def test_reciprocator_answers_what_its_law_says(law, expected):
    assert play(RECIPROCATOR, "CDCCCC", own="D", law=law) == expected


def test_under_reciprocity_trust_does_not_enter_choices():
    # the ego betrays at round 0; agent 1 retaliates once and forgives when the ego cooperates
    # (reciprocity) or keeps punishing while its trust is low (justice, build 0.15: slow)
    slow = dict(build=0.15)
    assert play(RECIPROCATOR, "DCCCCC", law="reciprocity", **slow) == "CDCCCC"
    assert play(RECIPROCATOR, "DCCCCC", law="justice", **slow) == "CDDDCC"  # trust 0.46 at r4


def test_unknown_law_is_refused():
    with pytest.raises(ValueError, match="unknown law 'anarchy'; known: reciprocity, justice"):
        PolisConfig(law="anarchy")


def test_machiavellian_cooperates_only_when_watched():
    assert play(MACHIAVELLIAN, PARTNER, witness="near") == "C" * 10
    assert play(MACHIAVELLIAN, PARTNER, witness="far") == "D" * 10


def test_machiavellian_defects_only_when_unobserved_in_a_population():
    cfg = PolisConfig(population="hobbesian", frames=121, image_size=0)
    truth = polis.run(cfg, polis.draw_scenario(cfg, np.random.default_rng(1), 64))
    mach = (truth["dispositions"][:, None, :] == MACHIAVELLIAN) & (truth["intended"] >= 0)
    mach[..., 0] = False  # the ego's choices are exogenous
    watched = truth["witness"].any(axis=2)  # (E, T, N): someone witnessed i's exchange
    assert mach.sum() > 100
    np.testing.assert_array_equal(truth["intended"][mach], watched[mach].astype(np.int8))


def test_trust_collapses_fast_and_rebuilds_slowly():
    cfg = PolisConfig(n_agents=2, frames=20 * 6, image_size=0, **STILL)
    sc = scenario(cfg, [A, B], [COOPERATOR, RECIPROCATOR])
    script = polis.Script.natural(cfg, 1)
    script.force[:, 0, 0] = [1] * 6 + [0] + [1] * 12  # the ego betrays at round 6
    trust = polis.run(cfg, sc, script)["trust"][0, 6::6, 1, 0]  # agent 1's trust, per round
    before, after = trust[5], trust[6]
    assert after < 0.5 * before  # collapse in one round
    assert np.all(np.diff(trust[:6]) < cfg.build)  # building is slow ...
    recovered = np.nonzero(trust[7:] >= before)[0]
    assert len(recovered) == 0 or recovered[0] >= 5  # ... and rebuilding takes many rounds


def _witnessed_round(trust_pairs, last=None, force_b=-1):
    """Agent 1 (reciprocator) meets agent 0; agent 2 watches. Returns (event of 1, T[2, 1])."""
    cfg = PolisConfig(n_agents=3, image_size=0, **STILL)
    sc = scenario(cfg, [A, B, [MID, 0.7]], [COOPERATOR, RECIPROCATOR, COOPERATOR])
    soc = Social.start(cfg, 1, 3)
    for (i, j), value in trust_pairs.items():
        soc.trust[0, i, j] = value
    if last:
        soc.last[0, 0, 1] = last
    pos = sc.pos0.astype(np.float32)
    force = np.array([[-1, force_b, -1]], np.int8)
    rec = exchange(cfg, soc, sc, 0, pos, np.array([[1, 0, -1]]), force, np.zeros((1, 3), bool))
    assert rec["witness"][0, 2, 1]
    return rec["event"][0, 1], soc.trust[0, 2, 1]


def test_witnesses_lower_trust_in_a_defector_but_not_in_a_justified_punisher():
    prior = PolisConfig().trust_prior
    event, t21 = _witnessed_round({}, force_b=0)  # unprovoked defection (a tremble)
    assert event == agents.UNPROVOKED and t21 < prior
    event, t21 = _witnessed_round({(1, 0): 0.2, (2, 0): 0.2})  # both distrust agent 0
    assert event == agents.JUSTIFIED and t21 == prior
    event, t21 = _witnessed_round({}, last=LAST_DU)  # agent 0 had betrayed agent 1
    assert event == agents.RETALIATION and t21 == prior
    event, t21 = _witnessed_round({(1, 0): 0.2, (2, 0): 0.8})  # the witness trusts agent 0
    assert event == agents.JUSTIFIED and t21 < prior


def test_betrayer_is_ostracised_in_a_civilized_population():
    weights = dict(zip(agents.DISPOSITIONS, POPULATIONS["civilized"], strict=True))
    weights["defector"] = weights["machiavellian"] = 0.0
    cfg = PolisConfig(population="custom", dispositions=tuple(weights.values()), frames=180,
                      image_size=0, tremble=0.0, noisy_tremble=0.0, ego_explore=0.0)  # fmt: skip
    sc = polis.draw_scenario(cfg, np.random.default_rng(2), 96)
    natural = polis.run(cfg, sc)
    met = natural["partner"][:, 6::6, 1] >= 0  # (E, R) agent 1 exchanges at round r
    met[:, :6] = False
    first = np.where(met.any(1), met.argmax(1), -1)
    keep = np.nonzero((first >= 0) & (first < 14))[0]
    script = polis.Script.natural(cfg, len(sc.dispositions))
    script.force[first[keep], keep, 1] = agents.D
    betrayed = polis.run(cfg, sc, script)

    def distance(truth):  # agent 1's mean distance to the others, over the 8 rounds after
        d = np.linalg.norm(truth["positions"] - truth["positions"][:, :, 1:2], axis=-1)
        d = d.sum(-1) / (cfg.n_agents - 1)  # (E, T)
        return np.array([d[e, (first[e] + 1) * 6 : (first[e] + 9) * 6].mean() for e in keep])

    gap = distance(betrayed) - distance(natural)
    assert len(keep) > 40 and gap.mean() > 0.02 and (gap > 0).mean() > 0.7


def test_civilized_core_without_tremble_cooperates_for_1000_rounds():
    weights = dict(zip(agents.DISPOSITIONS, POPULATIONS["civilized"], strict=True))
    weights["defector"] = weights["machiavellian"] = 0.0
    cfg = PolisConfig(population="custom", dispositions=tuple(weights.values()),
                      frames=1000 * 6 + 1, image_size=0, tremble=0.0, noisy_tremble=0.0,
                      ego_explore=0.0)  # fmt: skip
    truth = polis.run(cfg, polis.draw_scenario(cfg, np.random.default_rng(3), 8))
    executed = truth["executed"][truth["executed"] >= 0]
    assert len(executed) > 8 * 1000  # plenty of exchanges
    assert np.all(executed == agents.C)


def test_defection_is_common_in_hobbesian_and_rare_unprovoked_in_civilized():
    rates = {}
    for pop in ("civilized", "hobbesian"):
        cfg = PolisConfig(population=pop, frames=241, image_size=0)
        truth = polis.run(cfg, polis.draw_scenario(cfg, np.random.default_rng(4), 64))
        ev = truth["event"][truth["event"] >= 0]
        rates[pop] = np.bincount(ev, minlength=5) / len(ev)
    defect = [agents.UNPROVOKED, agents.RETALIATION, agents.JUSTIFIED]
    assert rates["hobbesian"][defect].sum() > 0.45
    assert rates["civilized"][agents.COOPERATION] > 0.6
    lawful = rates["civilized"][[agents.RETALIATION, agents.JUSTIFIED]].sum()
    assert lawful > 0.08  # lawful defections are common enough to learn


def test_trembles_recorded_and_policy_probability_exact():
    cfg = PolisConfig(frames=241, image_size=0, tremble=0.2, noisy_tremble=0.2)
    truth = polis.run(cfg, polis.draw_scenario(cfg, np.random.default_rng(5), 32))
    on = truth["executed"] >= 0
    flip = truth["executed"] != truth["intended"]
    assert not flip[..., 0][on[..., 0]].any()  # the ego never trembles
    assert abs(flip[..., 1:][on[..., 1:]].mean() - 0.2) < 0.03
    p = truth["prob"]
    assert np.all(p[~on] == 1) and np.all((p[on] > 0) & (p[on] <= 1))
    # deterministic intentions: a flip has probability exactly the tremble
    det = on & flip & (truth["dispositions"][:, None] != GENEROUS)
    det[..., 0] = False
    np.testing.assert_allclose(p[det], 0.2, rtol=1e-6)


def test_scene_is_legible_and_arrays_consistent():
    cfg = PolisConfig(n_agents=12, frames=121, image_size=32)
    out = polis.simulate(cfg, np.random.default_rng(6), 8)
    pos = out["positions"]
    d = np.linalg.norm(pos[:, :, :, None] - pos[:, :, None], axis=-1) + 9 * np.eye(12)
    assert d.min() > 2 * cfg.radius * 0.99  # discs never overlap (up to 1% of a diameter)
    assert out["pixels"].shape == (8, 121, 32, 32, 3) and out["state"].shape == (8, 121, 72)
    state = out["state"].reshape(8, 121, 12, 6)
    np.testing.assert_array_equal(state[..., :2], pos)
    ex = out["partner"][:, 6::6] >= 0  # exchange frames
    np.testing.assert_array_equal(state[:, 6::6, :, 4] + state[:, 6::6, :, 5], ex)
    ego_cd = out["actions"][:, 5::6, 2][:, : ex.shape[1]]  # action before each exchange frame
    np.testing.assert_array_equal(ego_cd != 0, ex[..., 0])
    np.testing.assert_array_equal(
        ego_cd[ex[..., 0]] > 0, out["executed"][:, 6::6, 0][ex[..., 0]] == 1
    )
    assert np.abs(out["actions"][..., :2]).max() <= 1


def test_determinism():
    cfg = PolisConfig(frames=61, image_size=16)
    a = polis.simulate(cfg, np.random.default_rng(7), 4)
    b = polis.simulate(cfg, np.random.default_rng(7), 4)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_cli_generate_manifest_rates_and_workers(tmp_path, capsys):
    base = ["generate", "polis", "--episodes", "8", "--frames", "25", "--image-size", "16",
            "--episodes-per-shard", "2", "--population", "mixture",
            "--hobbesian-fraction", "0.5"]  # fmt: skip
    assert cli.main([*base, "--out", str(tmp_path / "one")]) == 0
    assert "base rates" in capsys.readouterr().out
    assert cli.main([*base, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    one, two = open_dataset(tmp_path / "one"), open_dataset(tmp_path / "two")
    assert one.manifest["shards"] == two.manifest["shards"]  # same bytes, any worker count
    m = one.manifest
    assert m["world"] == "polis" and m["config"]["population"] == "mixture"
    assert set(m["base_rates"]["all"]) == {*agents.EVENTS, "n"}
    assert one.shape("actions") == (25, 3) and one.shape("trust") == (25, 6, 6)
    json.dumps(m)


def test_state_links_add_the_partner_one_hot_and_change_nothing_else(tmp_path):
    base = ["generate", "polis", "--episodes", "4", "--frames", "25", "--image-size", "16",
            "--seed", "3"]  # fmt: skip
    assert cli.main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert cli.main([*base, "--out", str(tmp_path / "links"), "--state-links"]) == 0
    plain, links = open_dataset(tmp_path / "plain"), open_dataset(tmp_path / "links")
    assert plain.manifest["state_layout"] == ["x", "y", "vx", "vy", "cue_c", "cue_d"]
    layout = links.manifest["state_layout"]
    assert layout == plain.manifest["state_layout"] + [f"link_{j}" for j in range(6)]
    s0, s1 = plain.array("state"), links.array("state")
    per0, per1 = s0.reshape(*s0.shape[:2], 6, 6), s1.reshape(*s1.shape[:2], 6, 12)
    np.testing.assert_array_equal(per1[..., :6], per0)  # same episodes, same first features
    np.testing.assert_array_equal(links.array("pixels"), plain.array("pixels"))
    hot, partner = per1[..., 6:], links.array("links")
    assert (partner >= 0).any() and (partner < 0).any()  # frames with and without a link
    assert (hot.sum(-1) == (partner >= 0)).all()
    e, t, i = np.nonzero(partner >= 0)
    assert (hot[e, t, i, partner[e, t, i]] == 1).all()
    # the link is symmetric: i's partner j has i as its partner
    assert (partner[e, t, partner[e, t, i]] == i).all()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--population", "utopia"], "unknown population"),
        (["--law", "anarchy"], "unknown law"),
        (["--dispositions", "saint=1"], "unknown disposition"),
        (["--hobbesian-fraction", "1.5"], "--hobbesian-fraction"),
        (["--tremble", "-0.1"], "--tremble"),
        (["--agents", "1"], "--agents"),
        (["--round-len", "0"], "--round-len"),
        (["--radius", "0.3"], "--radius"),
        (["--exchange-radius", "0.05"], "--exchange-radius"),
    ],
)
def test_cli_bad_input_is_one_line_and_touches_nothing(tmp_path, capsys, flags, message):
    out = tmp_path / "never"
    assert cli.main(["generate", "polis", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()


def test_the_wander_option_reaches_the_world_s_config(tmp_path):
    """`pwm generate polis --wander W` (the eighth session's noise diagnostic) is the world's
    wander, recorded in the manifest."""
    out = tmp_path / "still"
    argv = ["generate", "polis", "--out", str(out), "--episodes", "2", "--frames", "13",
            "--image-size", "16", "--seed", "0", "--wander", "0"]  # fmt: skip
    assert cli.main(argv) == 0
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["wander"] == 0.0 and PolisConfig().wander > 0
