"""Planning with the world model in both worlds (issue 29) -> experiments/results/planning/.

    PYTHONPATH=. python experiments/planning.py [--episodes 100] [--quick] [--out DIR]
        [--tasks reach push] [--no-sweep] [--no-polis]
        [--physical-ckpt CKPT] [--polis-physical-ckpt CKPT] [--political-ckpt CKPT ...]
    PYTHONPATH=. python experiments/planning.py --merge A/results.json B/results.json --out DIR

Physics: goal reaching with the ego disc (and pushing disc 1, `--tasks reach push`), closed
loop in the simulator with state observations: CEM in the physical model's latent space at the
CPU preset (pwm.planning.PRESETS["cpu"]), the same CEM with the simulator as the model (the
ceiling) and random forces, over the same episodes; success with a Wilson 95% CI, time per
decision, and a sweep of the planning budget. Polis: the ego's conduct under the political
models, the physical model and the baselines (pwm/planning/polis.py), with bootstrap 95% CIs over
episodes. Writes REPORT.md (the command and commit), results.json, success_vs_budget.png and
filmstrip_physics.png and filmstrip_polis.png (episode 0 of the first political model's
planned episodes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from data_gen import agents
from data_gen.physics import PhysicsConfig
from data_gen.polis_config import PolisConfig
from pwm.checkpoint import load_world_model
from pwm.planning import PRESETS, CEMConfig
from pwm.planning.physics import PhysicsTask, run_episodes
from pwm.planning.polis import POLICIES, PolisTask, run_polis, state_links
from pwm.probes.metrics import bootstrap_ci

ROOT = Path(__file__).resolve().parents[1]
RUNS = Path("runs")
# the social-law study's models (python experiments/law_study.py); the committed results used a
# pilot of the physical model whose weights equal law-physical-s0's (max difference 0.0)
PHYSICAL = RUNS / "law-physical-s0/version_0/checkpoints/last.ckpt"
# Polis: the headline political model (the exchange link in its state, 5 seeds in the law study)
# and the physical model of the same state layout (link columns zero in physics)
POLIS_PHYSICAL = RUNS / "law-physical-links-s0/version_0/checkpoints/last.ckpt"
POLITICAL = [
    RUNS / "law-links-reciprocity-s0/version_0/checkpoints/last.ckpt",
    RUNS / "law-links-reciprocity-s1/version_0/checkpoints/last.ckpt",
]
# (samples, topk, iterations) of the budget sweep; the largest for the simulator only (the model
# at 128 x 10 would take about 4x the CPU preset's 0.4 s per decision)
SWEEP = [(16, 4, 1), (32, 4, 3), (64, 8, 5), (128, 16, 10)]
SIM_ONLY = {(128, 16, 10)}
POLIS_CEM = CEMConfig(samples=32, topk=6, iterations=3, horizon=2, discrete="exhaustive")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def summarise_physics(r: dict) -> dict:
    s = r["success"]
    return {
        "episodes": int(len(s)),
        "success": float(s.mean()),
        "success_ci": wilson(int(s.sum()), len(s)),
        "least_distance": float(r["least_distance"].mean()),
        "final_distance": float(r["final_distance"].mean()),
        "seconds_per_decision": r["seconds_per_decision"],
    }


def summarise_polis(r: dict) -> dict:
    out = {}
    for k in ("betrayal_rate", "defection_rate", "payoff_per_exchange", "payoff", "final_trust",
              "final_distance", "exchanges"):  # fmt: skip
        v = np.asarray(r[k], float)
        v = v[np.isfinite(v)]
        out[k] = {"mean": float(v.mean()), "ci": bootstrap_ci(v, seed=0), "n": int(len(v))}
    out["seconds_per_decision"] = r["seconds_per_decision"]
    return out


def physics_part(args, cfg: PhysicsConfig, model, task: PhysicsTask, log) -> dict:
    cpu = PRESETS["cpu"]
    res = {"task": task.meta(), "cem": cpu.meta(), "controllers": {}, "sweep": []}
    films = {"model": None}
    for ctrl in () if args.budgets else ("random", "sim", "model"):
        t = time.time()
        r = run_episodes(ctrl, cfg, task, args.episodes, args.seed, cpu, model,
                         goal_objects=(task.target,), film=True)  # fmt: skip
        res["controllers"][ctrl] = summarise_physics(r) | {"wall_s": time.time() - t}
        films[ctrl] = r["film"]
        log(f"physics {task.task} {ctrl}: {res['controllers'][ctrl]}")
    if args.sweep:
        for samples, topk, iters in args.budgets or SWEEP:
            budget = replace(cpu, samples=samples, topk=topk, iterations=iters)
            for ctrl in ("model",) if args.budgets else ("sim", "model"):
                if ctrl == "model" and (samples, topk, iters) in SIM_ONLY and not args.budgets:
                    continue
                if budget == cpu and not args.budgets:
                    row = res["controllers"][ctrl]
                else:
                    r = run_episodes(ctrl, cfg, task, args.episodes, args.seed, budget, model,
                                     goal_objects=(task.target,))  # fmt: skip
                    row = summarise_physics(r)
                res["sweep"].append({"controller": ctrl, "samples": samples, "topk": topk,
                                     "iterations": iters} | row)  # fmt: skip
                log(f"sweep {task.task} {ctrl} {samples}x{iters}: {row['success']:.2f}")
    res["film"] = films["model"]
    return res


def polis_part(args, log) -> dict:
    task = PolisTask(rounds=args.rounds)
    config = PolisConfig(law="reciprocity", population="civilized")
    res = {"task": task.meta(), "cem": POLIS_CEM.meta(), "law": "reciprocity", "policies": {}}
    for policy in args.policies:
        if policy == "planner":
            continue
        r = run_polis(policy, config, task, args.episodes, args.seed, POLIS_CEM)
        res["policies"][policy] = summarise_polis(r)
        log(f"polis {policy}: betrayal {res['policies'][policy]['betrayal_rate']['mean']:.3f}")
    physical = [args.polis_physical_ckpt] if args.polis_physical_ckpt else []
    planners = [(f"physical planner ({run_name(c)})", c) for c in physical] + [
        (f"political planner ({run_name(c)})", c) for c in args.political_ckpt
    ]
    film = args.political_ckpt[0] if args.political_ckpt else None  # its episode 0: the film
    for name, ckpt in planners if "planner" in args.policies else []:
        model, hparams = load_world_model(ckpt)
        links = state_links(hparams, ckpt, config.n_agents)  # the --state-links models too
        r = run_polis("planner", config, task, args.episodes, args.seed, POLIS_CEM, model,
                      links=links, record=ckpt == film)  # fmt: skip
        if ckpt == film:
            res["film"] = {"ckpt": str(ckpt), "seed": args.seed, "episode": 0,
                           **{k: v[0].tolist() for k, v in r.pop("truth").items()}}  # fmt: skip
        res["policies"][name] = summarise_polis(r) | {"ckpt": str(ckpt)}
        log(f"polis {name}: betrayal {res['policies'][name]['betrayal_rate']['mean']:.3f}")
    return res


def run_name(ckpt) -> str:
    """The run of a checkpoint runs/<name>/version_0/checkpoints/<file>: <name>."""
    return Path(ckpt).parents[2].name


def polis_film(out: Path, film: dict, config: PolisConfig) -> None:
    """filmstrip_polis.png: the exchange frame of every round of one planned episode: agents
    (the ego red), each one's cue at the exchange (ring: green C, red D), the exchange links, and
    per round the ego's action, its partner and the partner's trust in the ego before it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos, cues, links = (np.asarray(film[k]) for k in ("positions", "cues", "links"))
    executed, partner, trust = (np.asarray(film[k]) for k in ("executed", "partner", "trust"))
    event, L = np.asarray(film["event"]), config.round_len
    frames = np.arange(L, len(pos), L)  # the exchange frames, one per round
    fig, axes = plt.subplots(1, len(frames), figsize=(2.0 * len(frames), 2.5))
    ring = {1: "green", 2: "red"}
    for r, (ax, t) in enumerate(zip(np.atleast_1d(axes), frames, strict=True)):
        for i, j in enumerate(links[t]):
            if j > i:
                ax.plot(*pos[t, [i, j]].T, color="grey", lw=1)
        for i, (x, y) in enumerate(pos[t]):
            ax.add_patch(plt.Circle((x, y), config.radius, color="C3" if i == 0 else "C0",
                                    alpha=0.8, ec=ring.get(int(cues[t, i]), "none"),
                                    lw=2.5))  # fmt: skip
        p = int(partner[t, 0])
        if p >= 0:
            act = "C" if executed[t, 0] == agents.C else "D"
            betray = act == "D" and event[t, 0] == agents.UNPROVOKED and (
                trust[t - 1, p, 0] >= config.trust_prior)  # fmt: skip
            title = f"round {r}: ego {act} to {p}\ntrust {trust[t - 1, p, 0]:.2f}"
            title += " (betrayal)" if betray else ""
        else:
            title = f"round {r}: no exchange\n"
        ax.set_title(title, fontsize=7)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1), ax.set_aspect("equal")
        ax.invert_yaxis()  # image convention (data_gen/render.py)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(
        f"Polis: the political planner ({run_name(film['ckpt'])}), episode 0 of the table's "
        f"run (seed {film['seed']}); ring = cue at the exchange",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(out / "filmstrip_polis.png", dpi=120)
    plt.close(fig)


def plots(out: Path, physics: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reach = physics["reach"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for ctrl, label in (("model", "CEM, physical model"), ("sim", "CEM, simulator (ceiling)")):
        rows = [r for r in reach["sweep"] if r["controller"] == ctrl]
        if not rows:
            continue
        x = [r["samples"] * r["iterations"] for r in rows]
        y = [r["success"] for r in rows]
        lo = [max(0.0, r["success"] - r["success_ci"][0]) for r in rows]
        hi = [max(0.0, r["success_ci"][1] - r["success"]) for r in rows]
        ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=label)
    rnd = reach["controllers"]["random"]
    ax.axhline(rnd["success"], color="grey", ls="--", label="random forces")
    ax.set_xscale("log")
    ax.set_xlabel("candidates per decision (samples x iterations)")
    ax.set_ylabel("success rate (Wilson 95% CI)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Physics goal reaching, {rnd['episodes']} episodes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "success_vs_budget.png", dpi=120)
    plt.close(fig)

    film = reach["film_episode0"]
    pos, goal = np.asarray(film["positions"]), np.asarray(film["goal"])  # (F, N, 2)
    frames = np.linspace(0, len(pos) - 1, 6).astype(int)
    fig, axes = plt.subplots(1, len(frames), figsize=(2.2 * len(frames), 2.4))
    radius = PhysicsConfig().radius
    for ax, f in zip(axes, frames, strict=True):
        ax.plot(pos[: f + 1, 0, 0], pos[: f + 1, 0, 1], color="k", lw=0.8)
        for i, (x, y) in enumerate(pos[f]):
            ax.add_patch(plt.Circle((x, y), radius, color="C3" if i == 0 else "C0", alpha=0.8))
        ax.plot(*goal, marker="x", color="C2", ms=10, mew=2)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1), ax.set_aspect("equal")
        ax.invert_yaxis()  # image convention: y grows downward (data_gen/render.py)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"frame {f}", fontsize=8)
    fig.suptitle("One planned episode (ego red, goal x, physical model, CPU preset)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "filmstrip_physics.png", dpi=120)
    plt.close(fig)


def args_episodes(res: dict) -> int:
    """Episodes per Polis policy (each policy's episodes are the same ones)."""
    return max(r["exchanges"]["n"] for r in res["polis"]["policies"].values())


def ci(x) -> str:
    return f"[{x[0]:.2f}, {x[1]:.2f}]"


def report(out: Path, res: dict, command: str, commit: str) -> None:
    L = ["# Planning with the world model (issue 29)", "",
         f"Command: `{command}`; commit {commit}; {res['date']}; wall {res['wall_s']:.0f} s at "
         "nice 19 on the shared 2-core CPU (1 torch thread).", ""]  # fmt: skip
    for name, part in res["physics"].items():
        if {"random", "sim", "model"} - set(part["controllers"]):
            continue  # a partial run (a sweep only): its rows appear once merged
        t = part["task"]
        L += [f"## Physics: {name}", "",
              f"{part['controllers']['random']['episodes']} episodes of {t['steps']} control "
              f"steps ({t['frame_skip']} frames each); success = disc {int(name != 'reach')} "
              f"within {t['tolerance']} of the goal at any frame; goals >= {t['min_distance']} "
              f"away. CEM at the CPU preset {part['cem']['samples']} samples, top "
              f"{part['cem']['topk']}, {part['cem']['iterations']} iterations, horizon "
              f"{part['cem']['horizon']}; the model's goal cost compares only the goal disc's "
              "16 embedding features. Seconds per decision: planning wall time per control "
              "step of one episode, amortised over the batch of episodes planned together.", "",
              "| controller | success | 95% CI (Wilson) | mean least distance | mean final "
              "distance | s / decision |", "|---|---|---|---|---|---|"]  # fmt: skip
        for ctrl, r in part["controllers"].items():
            L.append(f"| {ctrl} | {r['success']:.2f} | {ci(r['success_ci'])} | "
                     f"{r['least_distance']:.3f} | {r['final_distance']:.3f} | "
                     f"{r['seconds_per_decision']:.3f} |")  # fmt: skip
        m, s = part["controllers"]["model"]["success"], part["controllers"]["sim"]["success"]
        L += ["", f"Model / ceiling: {m / s if s else float('nan'):.2f} (goal: >= 0.90).", ""]
        if part["sweep"]:
            L += ["Budget sweep (same episodes):", "",
                  "| controller | samples | top | iterations | success | 95% CI |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
            for r in part["sweep"]:
                L.append(f"| {r['controller']} | {r['samples']} | {r['topk']} | "
                         f"{r['iterations']} | {r['success']:.2f} | "
                         f"{ci(r['success_ci'])} |")  # fmt: skip
            L.append("")
    p = res.get("polis")
    if p:
        c = p["cem"]
        L += ["## Polis: the ego's conduct", "",
              f"{args_episodes(res)} episodes of "
              f"{p['task']['rounds']} rounds, law {p['law']}, civilized population (real "
              f"dispositions). Planners: CEM {c['samples']} samples, top {c['topk']}, "
              f"{c['iterations']} iterations, horizon {c['horizon']} rounds, C/D searched "
              "exhaustively on common move draws, context "
              f"{p['task']['context']} rounds; goal: partners on a ring "
              f"{p['task']['ring']} around the ego showing C, cost over the partners' embedding "
              "parts summed over the horizon. Means over episodes with bootstrap 95% CIs "
              "(rates over the episodes where the ego had an exchange).", "",
              "| policy | betrayal rate | defection rate | payoff / exchange | final trust in "
              "ego | final distance | s / decision |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, r in p["policies"].items():
            cell = lambda k, r=r: f"{r[k]['mean']:.3f} {ci(r[k]['ci'])}"  # noqa: E731
            L.append(f"| {name} | {cell('betrayal_rate')} | {cell('defection_rate')} | "
                     f"{cell('payoff_per_exchange')} | {cell('final_trust')} | "
                     f"{cell('final_distance')} | {r['seconds_per_decision']:.3f} |")  # fmt: skip
        L.append("")
    L += ["## Reading", "", res.get("reading", "(see the tables)"), ""]
    (out / "REPORT.md").write_text("\n".join(L))


def budget_arg(text: str) -> tuple[int, int, int]:
    s, k, i = (int(x) for x in text.split("/"))
    return s, k, i


def merge(runs: list[dict]) -> dict:
    """One result from several runs: physics tasks, sweep rows and Polis policies combined."""
    res: dict = {"physics": {}}
    for r in runs:
        for name, part in r["physics"].items():
            have = res["physics"].setdefault(name, {**part, "controllers": {}, "sweep": []})
            have["controllers"].update(part["controllers"])
            have["sweep"] += part["sweep"]
            if part.get("film_episode0"):
                have["film_episode0"] = part["film_episode0"]
        if "polis" in r:
            p = res.setdefault("polis", {**r["polis"], "policies": {}})
            p["policies"].update(r["polis"]["policies"])
    for part in res["physics"].values():
        part["sweep"].sort(key=lambda row: (row["controller"], row["samples"] * row["iterations"]))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--rounds", type=int, default=8, help="Polis rounds per episode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="8 episodes, no sweep (a smoke run)")
    p.add_argument("--no-sweep", dest="sweep", action="store_false")
    p.add_argument("--tasks", nargs="+", choices=("reach", "push"), default=["reach"],
                   help="physics tasks (push: disc 1 to the goal, 16 steps)")  # fmt: skip
    p.add_argument("--merge", nargs="+", metavar="RESULTS_JSON",
                   help="only merge the results.json of earlier runs into one report in "
                   "--out")  # fmt: skip
    p.add_argument("--reading", metavar="FILE.md", help="the report's Reading section (text)")
    p.add_argument("--no-polis", dest="polis", action="store_false")
    p.add_argument("--no-physics", dest="physics", action="store_false")
    p.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES),
                   help="Polis policies (planner: the physical and political models)")  # fmt: skip
    p.add_argument(
        "--budgets",
        nargs="+",
        type=budget_arg,
        metavar="S/K/I",
        help="only the model's reach sweep at these budgets (samples/top/iterations)",
    )
    p.add_argument("--physical-ckpt", default=str(PHYSICAL))
    p.add_argument("--polis-physical-ckpt", default=str(POLIS_PHYSICAL),
                   help="the physical model planning in Polis ('' for none)")  # fmt: skip
    p.add_argument("--political-ckpt", nargs="*", default=[str(c) for c in POLITICAL])
    p.add_argument("--out", default=str(ROOT / "experiments/results/planning"))
    args = p.parse_args()
    if args.quick:
        args.episodes, args.sweep = 8, False
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()

    def log(msg: str) -> None:
        print(f"[planning {time.time() - start:6.0f}s] {msg}", flush=True)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    command = "PYTHONPATH=. python experiments/planning.py " + " ".join(sys.argv[1:])
    if args.merge:  # runs made apart (e.g. in parallel): one report
        runs = [json.loads(Path(f).read_text()) for f in args.merge]
        res = merge(runs)
        res["runs"] = [{k: r[k] for k in ("command", "commit", "date", "wall_s")} for r in runs]
        res["wall_s"] = sum(r["wall_s"] for r in runs)
        res["date"] = max(r["date"] for r in runs)
        commit = ", ".join(sorted({r["commit"] for r in runs}))
        command = "; ".join(r["command"] for r in runs) + f"; then `{command}`"
    else:
        model = load_world_model(args.physical_ckpt).model if args.physics else None
        cfg = PhysicsConfig()  # the physics data's config (radius .06, speed .015, force .004)
        res = {"args": vars(args), "physics": {}}
        for name in args.tasks if args.physics else []:
            task = PhysicsTask(task=name, steps=10 if name == "reach" else 16)
            run_args = argparse.Namespace(**{**vars(args), "sweep": args.sweep and name == "reach"})
            res["physics"][name] = physics_part(run_args, cfg, model, task, log)
        if args.polis:
            res["polis"] = polis_part(args, log)
        res["wall_s"] = time.time() - start
        res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        res["command"], res["commit"] = command, commit
        for part in res["physics"].values():
            film = part.pop("film")
            if film is not None:
                part["film_episode0"] = {k: np.asarray(v).tolist() for k, v in film.items()}
    if args.reading:
        res["reading"] = Path(args.reading).read_text().strip()
    (out / "results.json").write_text(json.dumps(res, indent=1, default=float))
    if res["physics"].get("reach", {}).get("film_episode0"):
        plots(out, res["physics"])
    if res.get("polis", {}).get("film"):
        polis_film(out, res["polis"]["film"], PolisConfig(law=res["polis"]["law"]))
    report(out, res, command, commit)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
