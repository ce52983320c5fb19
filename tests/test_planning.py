"""The planner (issue 29): CEM finds known optima, receding-horizon control re-plans every step,
the Polis and physics harnesses run closed loop, and bad input is refused with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from data_gen.physics import PhysicsConfig
from data_gen.polis_config import PolisConfig
from pwm.cli import main as pwm_main
from pwm.planning import (
    ActionSpace,
    CEMConfig,
    LatentScore,
    PlanningError,
    RecedingHorizon,
    cem,
    check_goal,
    goal_cost,
    sequences,
    tile_block,
)
from pwm.planning.physics import PhysicsTask, run_episodes
from pwm.planning.polis import PolisTask, run_polis, social_goal, to_blocks

FIXTURE = Path(__file__).parent / "fixtures" / "checkpoints" / "state_objects_stopgrad.ckpt"


class LinearWorld(nn.Module):
    """A toy world model z_{t+1} = z_t + a M (the interface LatentScore uses)."""

    def __init__(self, M: torch.Tensor):
        super().__init__()
        self.M = M
        self.predictor = nn.Module()
        self.predictor.history = 4

    def rollout(self, z_context, actions):
        z, T0 = z_context[:, -1], z_context.shape[1]
        out = []
        for s in range(actions.shape[1] - T0 + 1):
            z = z + actions[:, T0 - 1 + s] @ self.M
            out.append(z)
        return torch.stack(out, 1)


def test_cem_finds_the_optimum_of_a_quadratic():
    target = torch.tensor([[0.3, -0.5], [0.1, 0.7], [-0.6, 0.2]])  # (H, 2)
    space = ActionSpace(low=(-1.0, -1.0), high=(1.0, 1.0))
    cfg = CEMConfig(samples=200, topk=20, iterations=20, horizon=3)

    def score(u, k):
        return ((u - target) ** 2).sum((-1, -2))

    plan = cem(score, space, cfg, batch=2, generator=torch.Generator().manual_seed(0))
    assert plan.u.shape == (2, 3, 2)
    assert torch.allclose(plan.u, target.expand(2, -1, -1), atol=0.03)
    assert (plan.cost < 2e-3).all()


def test_cem_plans_to_a_goal_embedding_in_a_linear_world_model():
    M = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5]])  # a (2) -> z (3)
    model = LinearWorld(M)
    z0 = torch.zeros(1, 1, 3)
    goal = torch.tensor([[0.8, -0.6, 0.7]])  # reachable: sum of actions (0.8, -0.6)
    space = ActionSpace(low=(-0.5, -0.5), high=(0.5, 0.5))
    cfg = CEMConfig(samples=300, topk=30, iterations=15, horizon=2)
    score = LatentScore(model, z0, torch.zeros(1, 0, 2), goal, lambda u, k: u)
    plan = cem(score, space, cfg, 1, torch.Generator().manual_seed(1))
    assert torch.allclose(plan.u.sum(1), torch.tensor([[0.8, -0.6]]), atol=0.03)
    assert plan.cost.item() < 1e-3
    assert score.calls == cfg.iterations


def test_cem_is_deterministic_given_the_generator():
    space = ActionSpace(low=(-1.0,), high=(1.0,), choices=((1.0, -1.0),))
    cfg = CEMConfig(samples=16, topk=4, iterations=3, horizon=2)

    def score(u, k):
        return (u**2).sum((-1, -2)) + k.float().sum((-1, -2))

    a = cem(score, space, cfg, 3, torch.Generator().manual_seed(5))
    b = cem(score, space, cfg, 3, torch.Generator().manual_seed(5))
    assert torch.equal(a.u, b.u) and torch.equal(a.k, b.k)


@pytest.mark.parametrize("mode", ["cem", "exhaustive"])
def test_discrete_search_finds_the_best_sequence(mode):
    space = ActionSpace(choices=((1.0, -1.0),))  # C or D, nothing continuous
    cfg = CEMConfig(samples=8, topk=2, iterations=4, horizon=3, discrete=mode)
    best = torch.tensor([1, 0, 1])  # D, C, D

    def score(u, k):
        return (k[..., 0] != best).sum(-1).float()

    plan = cem(score, space, cfg, 2, torch.Generator().manual_seed(0))
    assert torch.equal(plan.k[..., 0], best.expand(2, -1))
    assert space.values(plan.k)[0, :, 0].tolist() == [-1.0, 1.0, -1.0]


def test_exhaustive_covers_every_sequence_each_iteration():
    space = ActionSpace(low=(0.0,), high=(1.0,), choices=((1.0, -1.0),))
    assert sequences(space, 3).shape == (8, 3, 1)
    seen = []

    def score(u, k):
        seen.append({tuple(s) for s in k[0, :, :, 0].tolist()})
        return torch.zeros(k.shape[:2])

    cem(score, space, CEMConfig(samples=16, topk=2, iterations=2, horizon=3,
                                discrete="exhaustive"), 1, torch.Generator())  # fmt: skip
    assert all(len(s) == 8 for s in seen)
    with pytest.raises(PlanningError, match="--samples >= 8"):
        CEMConfig(samples=4, topk=2, horizon=3, discrete="exhaustive").validate(space)


def test_exhaustive_compares_the_discrete_sequences_on_common_continuous_draws():
    # the continuous part dominates the cost; choosing D (index 1) costs a little more whatever
    # the move: with common draws the cheapest candidate chooses C in every problem
    space = ActionSpace(low=(-1.0, -1.0), high=(1.0, 1.0), choices=((1.0, -1.0),))
    draws = []

    def score(u, k):
        draws.append(u)
        return ((u - 0.3) ** 2).sum((-1, -2)) + 0.01 * k[..., 0].sum(-1)

    cfg = CEMConfig(samples=32, topk=4, iterations=3, horizon=2, discrete="exhaustive")
    plan = cem(score, space, cfg, 64, torch.Generator().manual_seed(0))
    assert (plan.k == 0).all()
    u = draws[0]  # candidate i pairs sequence i mod 4 with draw i div 4
    assert torch.equal(u[:, 0::4], u[:, 1::4]) and torch.equal(u[:, 0::4], u[:, 3::4])
    assert not torch.equal(u[:, 0], u[:, 4])
    # a C/D that does not change the cost at all: the tie goes to the first value (C), always
    tied = cem(lambda u, k: ((u - 0.3) ** 2).sum((-1, -2)), space, cfg, 64,
               torch.Generator().manual_seed(0))  # fmt: skip
    assert (tied.k == 0).all()


def test_receding_horizon_plans_every_step_and_warm_starts():
    space = ActionSpace(low=(-1.0,), high=(1.0,))
    cfg = CEMConfig(samples=8, topk=2, iterations=1, horizon=3)
    ctl = RecedingHorizon(space, cfg, torch.Generator().manual_seed(0))
    means = []

    def score(u, k):
        means.append(u[:, 0].clone())  # candidate 0 is the current mean
        return (u**2).sum((-1, -2))

    for _ in range(4):
        u, k = ctl.act(score, 1)
        assert u.shape == (1, 1) and k.shape == (1, 0)
    assert ctl.plans == 4
    prev = ctl.previous.u
    ctl.plan(score, 1)
    assert torch.equal(means[-1][0, :2], prev[0, 1:]) and torch.equal(means[-1][0, 2], prev[0, 2])
    ctl.reset()
    assert ctl.previous is None


def test_goal_cost_terminal_sum_and_dims():
    z = torch.zeros(1, 2, 3, 4)
    z[0, 1, -1] = 1.0
    goal = torch.zeros(1, 4)
    assert goal_cost(z, goal).tolist() == [[0.0, 4.0]]
    assert goal_cost(z, goal, dims=torch.tensor([0])).tolist() == [[0.0, 1.0]]
    z[0, 0, 0] = 1.0
    assert goal_cost(z, goal, terminal=False).tolist() == [[4.0, 4.0]]


def test_action_blocks_of_frame_skip_models():
    u = torch.tensor([[[[0.1, -0.2]]]])  # (B, S, H, 2)
    assert tile_block(u, 3)[0, 0, 0].tolist() == pytest.approx([0.1, -0.2] * 3)
    k = torch.tensor([[[[1]]]])  # D
    block = to_blocks(u, k, 6, 18, 0.009)[0, 0, 0].reshape(6, 3)
    assert block[:, 2].tolist() == [0, 0, 0, 0, 0, -1.0]  # the C/D only before the exchange
    assert block[:, :2].flatten().tolist() == pytest.approx([0.1, -0.2] * 6)
    phys = to_blocks(u, k, 6, 12, 0.009)[0, 0, 0]
    assert phys.tolist() == pytest.approx([0.0009, -0.0018] * 6)


@pytest.mark.parametrize(
    "change, match",
    [({"horizon": 0}, "--horizon must be >= 1"), ({"samples": 0}, "zero samples"),
     ({"topk": 0}, "--topk"), ({"iterations": 0}, "--iterations"),
     ({"discrete": "greedy"}, "--discrete")],
)  # fmt: skip
def test_bad_budgets_are_refused(change, match):
    with pytest.raises(PlanningError, match=match):
        CEMConfig(**change).validate()


def test_goals_of_another_kind_or_size_are_refused():
    state = {"observation": "state", "obs_size": 12}
    pixels = {"observation": "pixels", "obs_size": 32}
    check_goal(np.zeros(12, np.float32), state)
    check_goal(np.zeros((32, 32, 3), np.uint8), pixels)
    with pytest.raises(PlanningError, match="is an image 32x32x3 but the model observes the state"):
        check_goal(np.zeros((32, 32, 3), np.uint8), state)
    with pytest.raises(PlanningError, match="has shape"):
        check_goal(np.zeros(10, np.float32), state)
    with pytest.raises(PlanningError, match="image is 64x64x3 but the model's images are 32x32x3"):
        check_goal(np.zeros((64, 64, 3), np.uint8), pixels)
    with pytest.raises(PlanningError, match="state vector .* but the model observes pixels"):
        check_goal(np.zeros(12, np.float32), pixels)


@pytest.fixture
def goals(tmp_path):
    paths = {}
    for name, arr in {"img": np.zeros((32, 32, 3), np.uint8), "small": np.zeros(10, "f4"),
                      "ok": np.full(12, 0.5, "f4")}.items():  # fmt: skip
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], arr)
    return paths


@pytest.mark.parametrize(
    "args, match",
    [(["--goal", "{img}"], "is an image 32x32x3 but the model observes the state (12 features)"),
     (["--goal", "{small}"], "has shape (10,), the model's state has 12 features"),
     (["--horizon", "0"], "--horizon must be >= 1, got 0"),
     (["--samples", "0"], "zero samples"),
     (["--goal", "{missing}"], "cannot be read as a .npy array")],
)  # fmt: skip
def test_pwm_plan_refuses_bad_input_with_one_line(args, match, goals, tmp_path, capsys):
    out = tmp_path / "out"
    paths = {k: str(v) for k, v in goals.items()} | {"missing": str(tmp_path / "no.npy")}
    argv = ["plan", "physics", "--ckpt", str(FIXTURE), "--out", str(out)]
    argv += [a.format(**paths) for a in args]
    assert pwm_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pwm plan: error: ") and match in err[0], err
    assert not out.exists()


def test_pwm_plan_physics_writes_results(goals, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["plan", "physics", "--ckpt", str(FIXTURE), "--out", str(out), "--episodes", "2",
            "--steps", "2", "--samples", "6", "--topk", "2", "--iterations", "1",
            "--horizon", "2", "--goal", str(goals["ok"])]  # fmt: skip
    assert pwm_main(argv) == 0
    import json

    res = json.loads((out / "results.json").read_text())
    assert res["summary"]["episodes"] == 2 and len(res["episodes"]["success"]) == 2
    assert res["cem"]["samples"] == 6 and (out / "provenance.json").is_file()


def test_simulator_lookahead_reaches_goals_and_random_mostly_not():
    cfg, task = PhysicsConfig(), PhysicsTask(steps=8)
    budget = CEMConfig(samples=32, topk=4, iterations=3, horizon=3)
    sim = run_episodes("sim", cfg, task, 6, 0, budget)
    rnd = run_episodes("random", cfg, task, 6, 0)
    assert sim["success"].mean() >= 0.8 > rnd["success"].mean()
    assert (sim["least_distance"] <= rnd["least_distance"] + 1e-9).mean() >= 0.8


def test_polis_harness_measures_conduct():
    cfg, task = PolisConfig(law="reciprocity", population="civilized"), PolisTask(rounds=4)
    c = run_polis("always-c", cfg, task, 6, 0)
    d = run_polis("always-d", cfg, task, 6, 0)
    ok = c["exchanges"] > 0
    assert ok.any() and np.all(c["betrayal_rate"][ok] == 0) and np.all(c["defection_rate"][ok] == 0)
    ok = d["exchanges"] > 0
    assert np.all(d["defection_rate"][ok] == 1)
    assert np.nanmean(d["final_trust"]) < np.nanmean(c["final_trust"])
    tft = run_polis("tit-for-tat", cfg, task, 6, 0)
    assert np.all(tft["betrayal_rate"][tft["exchanges"] > 0] == 0)


def tiny_polis_model(obs_size: int = 36, action_dim: int = 18) -> nn.Module:
    """A random object-centric Polis state model (6 agents; 36 features, or 72 with the link
    columns; 18 action features per round-step: move + C/D, or 12: a physical model's forces)."""
    from pwm.models import build_world_model

    torch.manual_seed(0)
    return build_world_model(
        observation="state", obs_size=obs_size, action_dim=action_dim, window=4, history=3,
        embed_dim=12, projector_hidden=16, objects=6, encoder={"width": 8, "depth": 1},
        predictor={"width": 16, "depth": 1, "heads": 2, "head_dim": 8, "mlp_dim": 16},
    ).eval()  # fmt: skip


def test_social_goal_puts_partners_near_and_cooperating():
    state = np.random.default_rng(0).uniform(0.2, 0.8, (2, 36)).astype(np.float32)
    g = social_goal(state, 0.12).reshape(2, 6, 6)
    d = np.linalg.norm(g[:, 1:, :2] - g[:, :1, :2], axis=-1)
    assert np.allclose(d, 0.12, atol=1e-5)
    assert (g[:, 1:, 4] == 1).all() and (g[:, 1:, 5] == 0).all()
    assert np.array_equal(g[:, 0], state.reshape(2, 6, 6)[:, 0])
    # the --state-links layout (6 + 6 link columns per agent): each partner linked to the ego
    links = np.random.default_rng(1).uniform(0.2, 0.8, (2, 72)).astype(np.float32)
    gl = social_goal(links, 0.12, agents=6).reshape(2, 6, 12)
    assert np.allclose(gl[..., :6].reshape(2, 36), social_goal(links.reshape(2, 6, 12)[..., :6]
                                                               .reshape(2, 36), 0.12))  # fmt: skip
    assert (gl[:, 1:, 6] == 1).all() and (gl[:, 1:, 7:] == 0).all()
    assert np.array_equal(gl[:, 0], links.reshape(2, 6, 12)[:, 0])
    with pytest.raises(PlanningError, match="a state does not observe the Polis state of 6 "):
        social_goal(links[:, :66], 0.12, agents=6)


@pytest.mark.parametrize(
    "action_dim, links", [(18, False), (12, False), (18, True), (12, True)]
)  # a political (move + C/D) or physical model, each with or without the link columns
def test_polis_planner_runs_closed_loop_with_a_world_model(action_dim, links):
    model = tiny_polis_model(72 if links else 36, action_dim)
    cfg = PolisConfig(law="reciprocity", population="civilized")
    budget = CEMConfig(samples=8, topk=2, iterations=1, horizon=2, discrete="exhaustive")
    r = run_polis("planner", cfg, PolisTask(rounds=3), 3, 0, budget, model, links=links)
    assert r["seconds_per_decision"] > 0 and len(r["payoff"]) == 3


def test_polis_physical_planner_draws_its_blind_c_d_from_the_random_policys_coin(monkeypatch):
    import pwm.planning.polis as polis_planning

    physical = tiny_polis_model(36, action_dim=12)
    forced, real_run = [], polis_planning.run
    monkeypatch.setattr(polis_planning, "run", lambda c, sc, script: (
        forced.append(script.force[:, :, 0].copy()), real_run(c, sc, script))[1])  # fmt: skip
    cfg, task = PolisConfig(law="reciprocity", population="civilized"), PolisTask(rounds=4)
    budget = CEMConfig(samples=8, topk=2, iterations=1, horizon=2, discrete="exhaustive")
    run_polis("planner", cfg, task, 16, 3, budget, physical)
    planner = forced[-1]
    run_polis("random", cfg, task, 16, 3)
    assert np.array_equal(planner, forced[-1]) and 0 < planner.mean() < 1


def test_pwm_plan_polis_baseline_writes_results(tmp_path, capsys):
    import json

    out = tmp_path / "polis"
    argv = ["plan", "polis", "--policy", "always-d", "--out", str(out), "--episodes", "4",
            "--rounds", "3"]  # fmt: skip
    assert pwm_main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["policy"] == "always-d" and len(res["episodes"]["payoff"]) == 4
    assert pwm_main([*argv[:3], "tit-for-tot", *argv[4:]]) == 2
    assert capsys.readouterr().err.strip().startswith("pwm plan: error: --policy must be one of")


def test_polis_sim_lookahead_runs_closed_loop():
    cfg = PolisConfig(law="reciprocity", population="civilized")
    budget = CEMConfig(samples=8, topk=2, iterations=1, horizon=2, discrete="exhaustive")
    r = run_polis("sim-lookahead", cfg, PolisTask(rounds=3), 3, 0, budget)
    assert r["seconds_per_decision"] > 0 and np.isfinite(r["final_trust"]).all()


def test_pwm_plan_physics_refuses_a_state_links_checkpoint(monkeypatch, tmp_path, capsys):
    import pwm.planning.cli as plan_cli

    links = {"observation": "state", "obs_size": 72, "objects": 6, "frame_skip": 6}
    monkeypatch.setattr(plan_cli, "load_world_model", lambda path: (None, links))
    out = tmp_path / "out"
    assert pwm_main(["plan", "physics", "--ckpt", str(FIXTURE), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "12 state features per object (a --state-links layout)" in err[0]
    assert not out.exists()


def test_pwm_plan_polis_refuses_a_state_model_of_another_layout(monkeypatch, tmp_path, capsys):
    import pwm.planning.cli as plan_cli

    other = {"observation": "state", "obs_size": 48, "objects": 8}
    monkeypatch.setattr(plan_cli, "load_world_model", lambda path: (None, other))
    out = tmp_path / "out"
    argv = ["plan", "polis", "--policy", "planner", "--ckpt", str(FIXTURE), "--out", str(out)]
    assert pwm_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(36 features, or 72 with --state-links)" in err[0]
    assert not out.exists()


def test_polis_filmstrip_of_a_recorded_planned_episode(tmp_path):
    import sys

    sys.path.insert(0, "experiments")
    import planning as planning_experiment

    model = tiny_polis_model(72)
    cfg = PolisConfig(law="reciprocity", population="civilized")
    budget = CEMConfig(samples=8, topk=2, iterations=1, horizon=2, discrete="exhaustive")
    r = run_polis("planner", cfg, PolisTask(rounds=3), 2, 0, budget, model, links=True,
                  record=True)  # fmt: skip
    truth = r["truth"]
    assert truth["positions"].shape == (2, 3 * cfg.round_len + 1, 6, 2)
    assert truth["trust"].shape == (2, 3 * cfg.round_len + 1, 6, 6)
    film = {"ckpt": "runs/law-x-s0/version_0/checkpoints/last.ckpt", "seed": 0, "episode": 0,
            **{k: v[0].tolist() for k, v in truth.items()}}  # fmt: skip
    planning_experiment.polis_film(tmp_path, film, cfg)
    assert (tmp_path / "filmstrip_polis.png").stat().st_size > 1000
