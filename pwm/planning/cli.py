"""`pwm plan {physics,polis} --ckpt CKPT --out DIR ...`: closed-loop planning with a world model.

    pwm plan physics --ckpt CKPT --out DIR [--task reach|push] [--controller model|sim|random]
    pwm plan polis --ckpt CKPT --out DIR [--policy planner|always-c|always-d|tit-for-tat|random]

Runs episodes in the simulator (pwm/planning/physics.py, pwm/planning/polis.py) and writes
OUT/results.json (the settings, the summary with CIs, the per-episode values) and
OUT/provenance.json. The CEM budget starts from `--preset` (cpu: 64 samples, top 8,
5 iterations, horizon 3; lewm: 300, 30, 30, 5) and any of --samples/--topk/--iterations/--horizon
overrides it. `--goal FILE.npy` (physics) gives one goal observation for every episode: a state
vector of the model's size; the controlled disc's goal is its position there. Bad input (a goal
of another observation kind or size than the model's, a horizon <= 0, zero samples, a checkpoint
that cannot be read or does not fit the world) ends with one line `pwm plan: error: ...` and exit
code 2 before anything runs or is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from pwm import provenance
from pwm.checkpoint import CheckpointError, load_world_model
from pwm.console import DefaultsHelpFormatter
from pwm.planning.cem import PRESETS, PlanningError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise PlanningError(message)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="pwm plan", description="closed-loop planning with a world model -> "
               "OUT/results.json", formatter_class=DefaultsHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="world", required=True, parser_class=Parser)
    for world in ("physics", "polis"):
        s = sub.add_parser(world, help=f"episodes in the {world} world",
                           formatter_class=DefaultsHelpFormatter)  # fmt: skip
        s.add_argument("--ckpt", metavar="CKPT", help="a pwm checkpoint (needed to plan)")
        s.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
        s.add_argument("--episodes", type=int, default=100, help="closed-loop episodes")
        s.add_argument("--seed", type=int, default=0, help="episodes and CEM samples")
        s.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="CEM budget")
        s.add_argument("--samples", type=int, help="CEM candidates per iteration")
        s.add_argument("--topk", type=int, help="CEM elites")
        s.add_argument("--iterations", type=int, help="CEM iterations per plan")
        s.add_argument("--horizon", type=int, help="planned steps (model steps)")
        s.add_argument("--context", type=int, help="observed steps given to the model")
    ph = sub.choices["physics"]
    ph.add_argument("--task", choices=("reach", "push"), default="reach", help="goal task")
    ph.add_argument("--controller", choices=("model", "sim", "random"), default="model",
                    help="model: CEM in latent space; sim: CEM with the simulator; "
                    "random: random forces")  # fmt: skip
    ph.add_argument("--steps", type=int, default=10, help="control steps per episode")
    ph.add_argument("--tolerance", type=float, default=0.06, help="success radius")
    ph.add_argument("--goal", metavar="FILE.npy", help="one goal observation for all episodes")
    ph.add_argument("--batch", type=int, default=50, help="episodes planned together")
    po = sub.choices["polis"]
    po.add_argument("--policy", default="planner", help="planner, always-c, always-d, "
                    "tit-for-tat or random")  # fmt: skip
    po.add_argument("--rounds", type=int, default=8, help="decisions (rounds) per episode")
    po.add_argument("--law", choices=("reciprocity", "justice"), help="default: the model's")
    po.add_argument("--ring", type=float, default=0.12, help="goal distance of the partners")
    return p


def cem_config(args, discrete: str = "cem"):
    cfg = replace(PRESETS[args.preset], discrete=discrete)
    for name in ("samples", "topk", "iterations", "horizon"):
        if getattr(args, name) is not None:
            cfg = replace(cfg, **{name: getattr(args, name)})
    if args.topk is None and cfg.topk > cfg.samples:
        cfg = replace(cfg, topk=max(1, cfg.samples // 8))
    return cfg


def load_goal(path: str, hparams: dict) -> np.ndarray:
    from pwm.planning.latent import check_goal

    try:
        goal = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PlanningError(f"--goal {path} cannot be read as a .npy array ({e})") from None
    check_goal(goal, hparams, name=f"--goal {path}")
    return goal


def physics(args) -> dict:
    from data_gen.physics import PhysicsConfig
    from pwm.planning.physics import PhysicsTask, run_episodes

    if args.episodes < 1 or args.batch < 1:
        raise PlanningError("--episodes and --batch must be >= 1")
    model, hparams = None, {}
    if args.controller == "model" or args.ckpt:
        if not args.ckpt:
            raise PlanningError("--controller model needs --ckpt")
        model, hparams = load_world_model(args.ckpt)
        if hparams.get("observation") != "state":
            raise PlanningError("pwm plan physics runs state-observation models; the checkpoint "
                                f"{args.ckpt} observes {hparams.get('observation')}")  # fmt: skip
        if hparams.get("obs_size", 0) % 6:
            raise PlanningError(f"checkpoint {args.ckpt} has {hparams['obs_size']} state features,"
                                " not 6 per disc (a physics-layout state)")  # fmt: skip
        objects = int(hparams.get("objects") or 1)
        per = hparams["obs_size"] // objects
        if objects > 1 and per != 6:
            raise PlanningError(f"checkpoint {args.ckpt} reads {per} state features per object "
                                "(a --state-links layout); the planner builds the 6 per disc "
                                "of the plain physics state")  # fmt: skip
    skip = int(hparams.get("frame_skip", 6 if not hparams else 1))
    n = hparams.get("obs_size", 36) // 6
    task = PhysicsTask(task=args.task, steps=args.steps, frame_skip=skip,
                       tolerance=args.tolerance, context=args.context or 1).validate()  # fmt: skip
    if model is not None and task.context > model.predictor.history:
        raise PlanningError(f"--context {task.context} exceeds the model's history "
                            f"{model.predictor.history}")  # fmt: skip
    goal = load_goal(args.goal, hparams) if args.goal else None
    if goal is not None and not hparams:
        raise PlanningError("--goal needs --ckpt (the goal is checked against the model)")
    cem = cem_config(args).validate()
    cfg = PhysicsConfig(num_objects=n)
    cfg.validate()
    r = run_episodes(args.controller, cfg, task, args.episodes, args.seed, cem, model,
                     goal_objects=(task.target,) if model is not None and
                     model.predictor.objects > 1 else None, batch=args.batch,
                     goal_obs=goal)  # fmt: skip
    s = r["success"]
    return {
        "world": "physics",
        "task": task.meta(),
        "controller": args.controller,
        "cem": cem.meta(),
        "summary": {
            "episodes": int(len(s)),
            "success": float(s.mean()),
            "success_ci_wilson95": wilson(int(s.sum()), len(s)),
            "seconds_per_decision": r["seconds_per_decision"],
        },
        "episodes": {k: r[k].tolist() for k in ("success", "least_distance", "final_distance")},
    }


def polis(args) -> dict:
    from data_gen.polis_config import PolisConfig
    from pwm.planning.polis import POLICIES, PolisTask, run_polis, state_links
    from pwm.probes.metrics import bootstrap_ci

    if args.policy not in POLICIES:
        raise PlanningError(f"--policy must be one of {', '.join(POLICIES)}, got {args.policy!r}")
    if args.episodes < 1:
        raise PlanningError("--episodes must be >= 1")
    model, hparams, links = None, {}, False
    if args.policy == "planner":
        if not args.ckpt:
            raise PlanningError("--policy planner needs --ckpt")
        model, hparams = load_world_model(args.ckpt)
        links = state_links(hparams, args.ckpt, PolisConfig().n_agents)
    task = PolisTask(rounds=args.rounds, context=args.context or 2, ring=args.ring).validate()
    cem = cem_config(args, "exhaustive")
    if args.horizon is None:
        cem = replace(cem, horizon=2)
    cem.validate()
    law = args.law or hparams.get("law") or "reciprocity"
    config = PolisConfig(law=law, population="civilized")
    r = run_polis(args.policy, config, task, args.episodes, args.seed, cem, model, links=links)
    summary = {}
    for k, v in r.items():
        if k == "seconds_per_decision":
            continue
        v = np.asarray(v, float)
        ok = v[np.isfinite(v)]
        summary[k] = {"mean": float(ok.mean()) if len(ok) else None,
                      "ci95": bootstrap_ci(ok) if len(ok) else None}  # fmt: skip
    summary["seconds_per_decision"] = r["seconds_per_decision"]
    return {
        "world": "polis",
        "law": law,
        "task": task.meta(),
        "policy": args.policy,
        "cem": cem.meta(),
        "summary": summary,
        "episodes": {
            k: np.asarray(v, float).tolist() for k, v in r.items() if k != "seconds_per_decision"
        },
    }


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """Wilson score 95% interval of a proportion k / n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(centre - half), float(centre + half)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise PlanningError(f"--out {out} exists and is not a directory")
        result = (physics if args.world == "physics" else polis)(args)
        if args.ckpt:
            result["checkpoint"] = str(args.ckpt)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=1, default=float).replace("NaN", "null")
        (out / "results.json").write_text(text)
        inputs = {}
        record = provenance.collect(["pwm", "plan", *argv], inputs)
        if args.ckpt:
            record["checkpoint"] = provenance.checkpoint_record(args.ckpt)
        provenance.write(out, record)
        print(json.dumps(result["summary"], default=float))
        return 0
    except (PlanningError, CheckpointError, OSError) as e:
        text = " ".join(str(e).split()) or type(e).__name__
        print(f"pwm plan: error: {text}", file=sys.stderr)
        return 2
