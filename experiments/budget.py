"""The study's budget (issue 33): CPU hours per part, and wall time with N local jobs or N nodes.

    python experiments/budget.py [--probe-speedup STATE PIXELS OBJECTS] [--items-factor 5]

Computed, not measured: the job graph is reproduce.py's own (launcher.plan at full scale, every
part, seed, observation and world), and each job's time comes from the per-run times measured
on this project's 2-core CPU and written in experiments/results/study/README.md (COST below: the
midpoint of each measured range, with the line it comes from). `--probe-speedup` divides the
probe times by factors measured for the cached probes (BENCH.md, "Probe throughput");
`--items-factor` multiplies them by the growth of the item sets (the probes' time grows about
linearly with the items).

Wall time: list scheduling of the graph (a job starts as soon as what it reads is made and a
slot is free, in the order of the sequential run). On this machine N local jobs share 2 cores:
a job then runs with 2 / N threads, and a run at 1 thread takes THREAD_COST times as long as at 2
(BENCH.md: the base preset's training step, 2.725 s at 1 thread against 1.595 s at 2). On a
cluster each of N nodes (of this CPU's speed) runs one job at a time.
"""

from __future__ import annotations

import argparse
import heapq
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import launcher  # noqa: E402
import reproduce  # noqa: E402

THREAD_COST = 2.725 / 1.595  # a run at 1 thread against 2 (BENCH.md, train_step.py, base)
# seconds per job at 2 threads, one job at a time; from experiments/results/study/README.md
COST = {
    "data": 84,  # `--part data  # 1.4 min` (the whole part)
    "report": 24,  # `--part report  # 0.4 min, 245 probe runs`
    "fit pixels": 615,  # "pixel fits 535-694 s" (tenth session)
    "fit pixels frozen": 357,  # "the frozen encoder 353-361 s"
    "fit state": 270,  # "a state run 3-6 min plus about 1 min"
    "fit objects": 810,  # "an object-centric state run 11-16 min"
    "fit objects physics": 900,  # "physics 15 min + about 3 min"
    "fit objects h18": 1120,  # objects-sg-h18 "fits 1202, 1038 s"
    "fit objects oracle h18": 837,  # objects-oracle-h18 "fits 821, 853 s"
    "fit objects curriculum": 1020,  # "15-25 min each with probes" less 3 min of probes
    "probe pixels": 60,  # "about 1 min per pixel probe"
    "probe state": 60,  # "a state run ... plus about 1 min"
    "probe objects": 210,  # "about 3-4 min of probes" (one probe per run)
    "probe objects h18": 270,  # "3-6 min" of probes with history 18
    "probe objects curriculum": 90,  # 3 min of probes over its 2 item sets
}
PARTS = ("data", "main", "ablations", "curricula", "legibility", "objects", "report")


def kind(job: launcher.Job) -> str:
    """The COST key of a job."""
    if job.kind in ("dataset", "report"):
        return "data" if job.kind == "dataset" else "report"
    name = job.key.split(" ", 1)[1] if job.kind == "fit" else Path(job.output).name
    obj = "-objects" in name
    if job.kind == "probe":
        if not obj:
            return "probe pixels" if "-pixels-" in name else "probe state"
        if "-h18" in name:
            return "probe objects h18"
        return "probe objects curriculum" if any(c in name for c in reproduce.CURRICULA) else (
            "probe objects")  # fmt: skip
    if "-pixels-" in name:
        return "fit pixels frozen" if "-frozen-" in name else "fit pixels"
    if not obj:
        return "fit state"
    if "-h18" in name:
        return "fit objects oracle h18" if "oracle" in name else "fit objects h18"
    if any(c in name for c in reproduce.CURRICULA):
        return "fit objects curriculum"
    return "fit objects physics" if "physical" in name else "fit objects"


def graph() -> dict[str, list[launcher.Job]]:
    """The full study's jobs per part (each job in the first part that asks for it)."""
    p = argparse.ArgumentParser()
    p.add_argument("--variants", nargs="+", default=[
        *reproduce.ABLATIONS, *reproduce.CURRICULA, *reproduce.OBJECT_CURRICULA,
        *reproduce.OBJECTS])  # fmt: skip
    seen, out = set(), {}
    reproduce.set_scale("full")
    for part in PARTS:
        args = p.parse_args([])
        args.part, args.seeds, args.obs, args.worlds = [part], [0, 1, 2], ["pixels", "state"], [
            "physics", "polis"]  # fmt: skip
        args.scale = "full"
        jobs = launcher.plan(reproduce, lambda a=args: reproduce.study(a), keep_data=True)
        out[part] = [j for j in jobs if j.key not in seen and (part == "data") == (
            j.kind == "dataset")]  # fmt: skip
        seen |= {j.key for j in out[part]}
    for job in out["report"]:  # after every probe of every part
        job.deps = [j.key for p in PARTS for j in out[p] if j.kind == "probe"]
    return out


def seconds(job: launcher.Job, probe_speedup: dict, items: float) -> float:
    k = kind(job)
    if k == "data":
        return COST["data"] / 9  # the part's time over its 9 datasets
    t = COST[k]
    if job.kind == "probe":
        obs = "objects" if "objects" in k else k.split()[1]
        t = t * items / probe_speedup[obs]
    return t


def schedule(jobs: list[launcher.Job], time: dict[str, float], slots: int) -> float:
    """Wall time with `slots` jobs at a time, as the local launcher starts them: whenever a slot
    is free, the first job (in the sequential run's order) whose dependencies are done."""
    keys = {j.key for j in jobs}
    waiting, running, done, now = list(jobs), [], set(), 0.0
    while waiting or running:
        for job in list(waiting):
            if len(running) >= slots:
                break
            if all(d in done or d not in keys for d in job.deps):
                waiting.remove(job)
                heapq.heappush(running, (now + time[job.key], job.key))
        now, key = heapq.heappop(running)
        done.add(key)
    return now


def table(probe_speedup: dict, items: float, nodes: tuple[int, ...]) -> str:
    parts = graph()
    everything = [j for p in PARTS for j in parts[p]]
    time = {j.key: seconds(j, probe_speedup, items) for j in everything}
    before = {j.key: seconds(j, dict.fromkeys(probe_speedup, 1.0), 1.0) for j in everything}
    head = ["part", "fits", "probes", "CPU h today", "of which probes",
            f"CPU h, cached probes{f', {items:g}x items' if items != 1 else ''}"]  # fmt: skip
    rows = []
    for part in PARTS:
        jobs = parts[part]
        fits = sum(j.kind == "fit" for j in jobs)
        probes = [j for j in jobs if j.kind == "probe"]
        rows.append([part, fits, len(probes), sum(before[j.key] for j in jobs) / 3600,
                     sum(before[j.key] for j in probes) / 3600,
                     sum(time[j.key] for j in jobs) / 3600])  # fmt: skip
    total = ["**all**", *(sum(r[i] for r in rows) for i in range(1, 6))]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in [*rows, total]:
        lines.append("| " + " | ".join(
            f"{c:.2f}" if isinstance(c, float) else str(c) for c in r) + " |")  # fmt: skip
    local = {n: schedule(everything, {k: v * (THREAD_COST if n > 1 else 1.0)
                                      for k, v in time.items()}, n) / 3600
             for n in (1, 2)}  # fmt: skip
    cluster = {n: schedule(everything, time, n) / 3600 for n in nodes}
    lines += [
        "",
        "Wall time of the whole study (computed, cached probes"
        + (f", {items:g}x items" if items != 1 else "")
        + "): this machine, 1 job at a time (2 threads): "
        + f"{local[1]:.1f} h; 2 local jobs (1 thread each): {local[2]:.1f} h; a cluster of N "
        + "nodes of this CPU, one job per node: "
        + ", ".join(f"N = {n}: {h:.1f} h" for n, h in cluster.items())
        + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--probe-speedup", nargs=3, type=float, default=[1.0, 1.0, 1.0],
                   metavar=("STATE", "PIXELS", "OBJECTS"),
                   help="the cached probes' speed-up per kind of model (BENCH.md)")  # fmt: skip
    p.add_argument("--items-factor", type=float, default=1.0, help="item sets this much larger")
    p.add_argument("--nodes", nargs="+", type=int, default=[8, 32, 128])
    args = p.parse_args()
    speed = dict(zip(("state", "pixels", "objects"), args.probe_speedup, strict=True))
    print(table(speed, args.items_factor, tuple(args.nodes)))


if __name__ == "__main__":
    main()
