"""Is cooperation the only stable equilibrium of Polis? The evolutionary analysis, one command.

    python experiments/evolution.py [--quick] [--out DIR] [--seed S] ...   (make evolve)

For each law and tremble it measures the empirical game of Polis (data_gen/polis_game.py: the
payoff per round of each disposition against each other, with 95% CIs clustered by episode),
then runs evolution on it (data_gen/evolution.py): replicator trajectories from the civilized and
the hobbesian mixes, basins of attraction, the small-mutation-limit Moran chain (fixation
probabilities, stationary distribution); at the world's default tremble also the full Moran
chain with mutation (its exact stationary distribution, the expected path from `--start`, the
fixation of each invader into a civilized society), the direct invasion fitness of each mutant
in civilized episodes, the machiavellian's across witness radii, and a longer-lifetime check.

Writes to --out (default experiments/results/evolution/; with --quick runs/evolution-quick/, so a
debug run never overwrites the committed results): results.json (every number, with the
command and commit), evolved.json (the evolved mix per law, read by `--population evolved`;
no provenance in it, so the same seed gives the same bytes), REPORT.md and PNGs
(experiments/evolution_report.py). Bad options fail with one line, exit code 2, nothing written.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_gen import polis_game  # noqa: E402
from data_gen.agents import DEFECTOR, DISPOSITIONS, MACHIAVELLIAN  # noqa: E402
from data_gen.evolution import Moran, basins, invasion_fitness, replicator  # noqa: E402
from data_gen.polis_config import (  # noqa: E402
    LAWS,
    POPULATIONS,
    PolisConfig,
    check_payoffs,
    parse_dispositions,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments/results/evolution"
QUICK_OUT = ROOT / "runs/evolution-quick"  # a debug run never overwrites the committed results
K = len(DISPOSITIONS)
DEFAULT_TREMBLE = PolisConfig().tremble


@dataclass(frozen=True)
class Settings:
    """The analysis' options (the CLI's flags); `check` refuses bad ones before any work."""

    seed: int = 0
    episodes: int = 24000  # per game (law, tremble): CIs <= 5% of the matrix's range
    invasion_episodes: int = 4000  # per direct-invasion measurement
    frames: int = 64  # an episode, the lifetime of a society (the generator's default)
    long_frames: int = 241  # the lifetime check (40 rounds)
    laws: tuple[str, ...] = LAWS
    trembles: tuple[float, ...] = (0.0, DEFAULT_TREMBLE, 0.1)
    witness_radii: tuple[float, ...] = (0.1, 0.2, 0.3, 0.45, 0.6)
    population_size: int = 12  # Z of the finite population (the full chain has C(Z+5, 5) states)
    beta: float = 1.0  # intensity of selection
    mutation: float = 0.01  # mu of the full chain (0: the small-mutation limit only)
    start: str = "civilized"  # where the Moran path starts: a population or NAME=W,...
    basin_samples: int = 1000
    bootstrap: int = 200  # episode-bootstrap replicates of each game, for the flows' robustness
    sml_sizes: tuple[int, ...] = (30, 100)  # more population sizes for the small-mutation limit
    t_end: float = 2000.0  # replicator time (payoffs per round are of order 1)
    payoffs: tuple[float, float, float, float] = (5.0, 3.0, 1.0, 0.0)

    def check(self) -> None:
        check_payoffs(self.payoffs)
        if not 0.0 <= self.mutation <= 1.0:
            raise ValueError(f"--mutation must be in [0, 1], got {self.mutation}")
        if self.population_size < K:
            raise ValueError(
                f"--population-size must be >= the number of types ({K}), got "
                f"{self.population_size}"
            )
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"--beta must be a finite number >= 0, got {self.beta}")
        for name in ("episodes", "invasion_episodes", "basin_samples", "bootstrap"):
            if getattr(self, name) < 2:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 2")
        if not (math.isfinite(self.t_end) and self.t_end > 0):
            raise ValueError(f"--t-end must be > 0, got {self.t_end}")
        if DEFAULT_TREMBLE not in self.trembles:
            raise ValueError(f"--trembles must include the world's default {DEFAULT_TREMBLE}")
        start_mix(self.start)
        for law in self.laws:  # every world option through PolisConfig's own checks
            for tremble in self.trembles:
                world(self, law, tremble)
            for radius in self.witness_radii:
                world(self, law, DEFAULT_TREMBLE, witness_radius=radius)
            world(self, law, DEFAULT_TREMBLE, frames=self.long_frames)


QUICK = dict(
    episodes=600,
    invasion_episodes=200,
    trembles=(DEFAULT_TREMBLE,),
    witness_radii=(0.1, 0.3),
    basin_samples=40,
    long_frames=121,
    bootstrap=20,
)


def world(s: Settings, law: str, tremble: float, **changes) -> PolisConfig:
    t, r, p, sucker = s.payoffs
    kw = dict(
        law=law,
        tremble=tremble,
        frames=s.frames,
        image_size=0,
        payoff_t=t,
        payoff_r=r,
        payoff_p=p,
        payoff_s=sucker,
    )
    return PolisConfig(**{**kw, **changes})


def start_mix(text: str) -> tuple[float, ...]:
    """A population name of POPULATIONS or a NAME=W,... mix (unknown names refused)."""
    return POPULATIONS[text] if text in POPULATIONS else parse_dispositions(text)


def counts_of(mix, size: int) -> np.ndarray:
    """(K,) integer counts summing to `size` closest to size * mix (largest remainders)."""
    want = np.asarray(mix) / np.sum(mix) * size
    counts = np.floor(want).astype(int)
    counts[np.argsort(-(want - counts), kind="stable")[: size - counts.sum()]] += 1
    return counts


def invasion_ci(game: polis_game.RatioEstimate, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A x)_i - x . A x for every type i, with 95% half-widths (clustered by episode)."""
    vals, halves = [], []
    for i in range(K):
        w = -np.outer(x, x)
        w[i] += x
        v, h = game.contrast(w)
        vals.append(v)
        halves.append(h)
    return np.array(vals), np.array(halves)


def label(mask: int) -> str:
    return "+".join(d for i, d in enumerate(DISPOSITIONS) if mask >> i & 1)


def analyse(s: Settings, progress: Progress) -> tuple[dict, dict]:
    """All numbers (JSON-ready) and the trajectories for the plots."""
    seeds = iter(np.random.SeedSequence(s.seed).spawn(1000))
    n_inv = (K + 1) + 2 * len(s.witness_radii)
    total = len(s.laws) * (
        len(s.trembles) * s.episodes + s.episodes // 2 + n_inv * s.invasion_episodes
    )
    sim = progress.add_task("simulating Polis episodes", total=total)
    step = lambda n: progress.advance(sim, n)  # noqa: E731
    civ, hob = np.array(POPULATIONS["civilized"]), np.array(POPULATIONS["hobbesian"])
    out, curves = {}, {}
    for law in s.laws:
        res, cur = {"games": {}}, {}
        for tremble in s.trembles:
            rng = np.random.default_rng(next(seeds))
            game = polis_game.measure_game(world(s, law, tremble), rng, s.episodes, progress=step)
            a, half = game.per_round.mean, game.per_round.halfwidth
            times, traj = replicator(a, np.stack([civ, hob]), s.t_end, points=400)
            starts, labels = basins(a, np.random.default_rng(next(seeds)), s.basin_samples, s.t_end)
            shares = {label(m): float((labels == m).mean()) for m in np.unique(labels)}
            x_end = traj[-1, 0]
            inv_civ, inv_civ_h = invasion_ci(game.per_round, civ)
            inv_end, inv_end_h = invasion_ci(game.per_round, x_end)
            inv_def, inv_def_h = invasion_ci(game.per_round, np.eye(K)[DEFECTOR])
            moran = Moran(a, s.population_size, s.beta)
            rho, pi_sml = moran.sml()
            boot = game.per_round.bootstrap(np.random.default_rng(next(seeds)), s.bootstrap)
            res["games"][str(tremble)] = {
                "A": a.tolist(),
                "halfwidth": half.tolist(),
                "per_exchange": game.per_exchange.mean.tolist(),
                "max_halfwidth": float(half.max()),
                "range": float(a.max() - a.min()),
                "episodes": s.episodes,
                "replicator_end": {"civilized": x_end.tolist(), "hobbesian": traj[-1, 1].tolist()},
                "speed_at_civilized": float(np.abs(invasion_fitness(a, civ) * civ).sum()),
                "invasion_at_civilized": {
                    "fitness": inv_civ.tolist(),
                    "halfwidth": inv_civ_h.tolist(),
                },
                "invasion_at_civilized_end": {
                    "fitness": inv_end.tolist(),
                    "halfwidth": inv_end_h.tolist(),
                },
                "invasion_at_all_defector": {
                    "fitness": inv_def.tolist(),
                    "halfwidth": inv_def_h.tolist(),
                },
                "basins": dict(sorted(shares.items(), key=lambda kv: -kv[1])),
                "basin_samples": s.basin_samples,
                "sml_stationary": pi_sml.tolist(),
                "sml_fixation": rho.tolist(),
                "bootstrap_flows": flow_fates(s, boot, civ, hob),
            }
            if tremble == DEFAULT_TREMBLE:
                cur.update(times=times, traj=traj, a=a, half=half)
                res["moran"] = moran_full(s, moran, cur)
        base = world(s, law, DEFAULT_TREMBLE)
        inv = polis_game.measure_invasion(
            base, tuple(civ), np.random.default_rng(next(seeds)), s.invasion_episodes, progress=step
        )
        res["direct_invasion"] = {
            "fitness": inv.fitness.tolist(),
            "halfwidth": inv.halfwidth.tolist(),
            "mutant": inv.mutant.tolist(),
            "resident": inv.resident.tolist(),
            "episodes": s.invasion_episodes,
        }
        res["witness"] = {}
        for radius in s.witness_radii:
            cfg = replace(base, witness_radius=radius)
            w = polis_game.measure_invasion(
                cfg,
                tuple(civ),
                np.random.default_rng(next(seeds)),
                s.invasion_episodes,
                mutants=(MACHIAVELLIAN,),
                progress=step,
            )
            res["witness"][str(radius)] = {
                "fitness": float(w.fitness[0]),
                "halfwidth": float(w.halfwidth[0]),
            }
        long = polis_game.measure_game(
            replace(base, frames=s.long_frames),
            np.random.default_rng(next(seeds)),
            s.episodes // 2,
            progress=step,
        )
        a_long = long.per_round.mean
        inv_long, inv_long_h = invasion_ci(long.per_round, civ)
        res["long_lifetime"] = {
            "frames": s.long_frames,
            "A": a_long.tolist(),
            "max_halfwidth": float(long.per_round.halfwidth.max()),
            "invasion_at_civilized": {
                "fitness": inv_long.tolist(),
                "halfwidth": inv_long_h.tolist(),
            },
            "replicator_end": {
                name: replicator(a_long, x, s.t_end, points=2)[1][-1, 0].tolist()
                for name, x in (("civilized", civ), ("hobbesian", hob))
            },
        }
        out[law], curves[law] = res, cur
    return out, curves


def flow_fates(s: Settings, boot: np.ndarray, civ: np.ndarray, hob: np.ndarray) -> dict:
    """Where the replicator flow from each mix ends, over bootstrap games (R, K, K): the share
    of replicates ending cooperative (defectors + machiavellians < 1%) or defective (> 99%)."""
    r = len(boot)
    starts = np.concatenate([np.tile(civ, (r, 1)), np.tile(hob, (r, 1))])  # (2R, K)
    end = replicator(np.concatenate([boot, boot]), starts, s.t_end, points=2)[1][-1]  # (2R, K)
    bad = end[:, [DEFECTOR, MACHIAVELLIAN]].sum(1)  # (2R,)
    out = {}
    for name, part in (("civilized", bad[:r]), ("hobbesian", bad[r:])):
        out[name] = {
            "cooperative": float((part < 0.01).mean()),
            "defective": float((part > 0.99).mean()),
            "replicates": r,
        }
    return out


def moran_full(s: Settings, moran: Moran, cur: dict) -> dict:
    """The finite-population results at the default tremble (see the module docstring)."""
    civ = np.array(POPULATIONS["civilized"])
    z = s.population_size
    absorb = {}
    for i, name in enumerate(DISPOSITIONS):
        start = counts_of(civ, z - 1)
        start[i] += 1
        fate = moran.absorption(start)
        absorb[name] = {
            "start": start.tolist(),
            "takes_over": float(fate[i]),
            "neutral": start[i] / z,
            "fate": fate.tolist(),
        }
    start = counts_of(start_mix(s.start), z)
    if s.mutation > 0:
        mean = moran.mean_mix(moran.stationary(s.mutation))
        steps = 400 * z
        path = moran.path(s.mutation, start, steps, every=z)  # one point per generation
        cur.update(path=path, generations=np.arange(len(path)))
    else:  # the small-mutation limit: the time spent monomorphic in each type
        mean = moran.sml()[1]
    sml_by_size = {str(n): Moran(moran.a, n, s.beta).sml()[1].tolist() for n in s.sml_sizes}
    return {
        "sml_stationary_by_size": sml_by_size,
        "population_size": z,
        "beta": s.beta,
        "mutation": s.mutation,
        "stationary_mean": mean.tolist(),
        "start": start.tolist(),
        "path_end": cur["path"][-1].tolist() if "path" in cur else None,
        "fixation_into_civilized": absorb,
    }


def evolved_json(s: Settings, results: dict) -> dict:
    """The evolved mixes `--population evolved` reads: weights per law, and how they were made."""
    return {
        "dispositions": list(DISPOSITIONS),
        "what": "mean mix of the stationary distribution of the Moran (pairwise-comparison) "
        "process on Polis's empirical game at the default world (experiments/evolution.py)",
        "settings": {
            "seed": s.seed,
            "episodes": s.episodes,
            "frames": s.frames,
            "tremble": DEFAULT_TREMBLE,
            "population_size": s.population_size,
            "beta": s.beta,
            "mutation": s.mutation,
            "payoffs": list(s.payoffs),
        },
        "laws": {law: {"weights": r["moran"]["stationary_mean"]} for law, r in results.items()},
    }


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return (done.stdout.strip() or "unknown") + ("-dirty" if dirty else "")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ValueError(message)


def parse(argv: list[str]) -> tuple[Settings, Path]:
    d = Settings()
    p = _Parser(prog="evolution", description=__doc__.splitlines()[0])

    def floats(text: str) -> tuple[float, ...]:
        return tuple(float(v) for v in text.split(",") if v.strip())

    p.add_argument(
        "--out",
        type=Path,
        help=f"output directory (default {OUT.relative_to(ROOT)}; "
        f"with --quick {QUICK_OUT.relative_to(ROOT)}, git-ignored)",
    )
    p.add_argument("--quick", action="store_true", help="a small debug run (seconds, loose CIs)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--episodes", type=int, default=d.episodes, help="episodes per game")
    p.add_argument("--invasion-episodes", type=int, default=d.invasion_episodes)
    p.add_argument("--frames", type=int, default=d.frames, help="episode length (a lifetime)")
    p.add_argument("--laws", default=",".join(d.laws), help="comma-separated laws")
    p.add_argument("--trembles", type=floats, default=d.trembles)
    p.add_argument("--witness-radii", type=floats, default=d.witness_radii)
    p.add_argument("--population-size", type=int, default=d.population_size, help="Z >= 6")
    p.add_argument("--beta", type=float, default=d.beta, help="intensity of selection")
    p.add_argument("--mutation", type=float, default=d.mutation, help="mu in [0, 1]")
    p.add_argument("--start", default=d.start, help="Moran start: civilized|hobbesian|NAME=W,..")
    p.add_argument("--basin-samples", type=int, default=d.basin_samples)
    p.add_argument("--bootstrap", type=int, default=d.bootstrap, help="bootstrap replicates")
    for flag, v in zip(("t", "r", "p", "s"), d.payoffs, strict=True):
        p.add_argument(f"--payoff-{flag}", type=float, default=v, help=f"PD payoff {flag.upper()}")
    a = p.parse_args(argv)
    laws = tuple(x.strip() for x in a.laws.split(",") if x.strip())
    bad = [law for law in laws if law not in LAWS]
    if bad or not laws:
        raise ValueError(f"unknown law {bad[0] if bad else a.laws!r}; known: {', '.join(LAWS)}")
    s = Settings(
        seed=a.seed,
        episodes=a.episodes,
        invasion_episodes=a.invasion_episodes,
        frames=a.frames,
        laws=laws,
        trembles=a.trembles,
        witness_radii=a.witness_radii,
        population_size=a.population_size,
        beta=a.beta,
        mutation=a.mutation,
        start=a.start,
        basin_samples=a.basin_samples,
        bootstrap=a.bootstrap,
        payoffs=(a.payoff_t, a.payoff_r, a.payoff_p, a.payoff_s),
    )
    if a.quick:
        s = replace(s, **QUICK)
    s.check()
    return s, a.out or (QUICK_OUT if a.quick else OUT)


def main(argv: list[str]) -> int:
    try:
        s, out = parse(argv)
    except ValueError as e:
        print(f"evolution: error: {e}", file=sys.stderr)
        return 2
    from experiments.evolution_report import write_report  # matplotlib only when running

    t0 = time.time()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as progress:
        results, curves = analyse(s, progress)
    out.mkdir(parents=True, exist_ok=True)
    seconds = time.time() - t0
    command = "python experiments/evolution.py " + " ".join(argv)
    doc = {
        "provenance": {
            "command": command.strip(),
            "commit": commit(),
            "seconds": round(seconds, 1),
        },
        "settings": asdict(s),
        "default_tremble": DEFAULT_TREMBLE,
        "dispositions": list(DISPOSITIONS),
        "laws": results,
    }
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "evolved.json").write_text(json.dumps(evolved_json(s, results), indent=1) + "\n")
    write_report(doc, curves, out)
    print(f"evolution: wrote {out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
