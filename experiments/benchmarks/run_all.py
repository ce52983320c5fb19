"""Run every benchmark and write experiments/results/BENCH.md (what `make bench` runs).

    python experiments/benchmarks/run_all.py [--quick] [--out experiments/results/BENCH.md]

Runs each script of this folder in its own process, one after the other (never two at once:
they would time each other), train_step.py first so that the data and renderer benchmarks compare
against the training step's measured frames/s. BENCH.md gets the machine (CPU model, cores,
library versions, torch threads), the date, the commit, the load average around every script,
every figure with the command behind it, and a summary of the targets. A script that fails is
reported in BENCH.md and makes this command exit non-zero after the others have run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import load, machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def run(script: str, extra: list[str], quick: bool, tmp: Path) -> dict:
    out = tmp / f"{script}.json"
    cmd = [sys.executable, str(HERE / f"{script}.py"), *extra, "--json", str(out)]
    cmd += ["--quick"] if quick else []
    print(f"[run_all] {script} (load {load()})", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        shown = ["python", str(Path(cmd[1]).relative_to(ROOT)), *extra]
        return {"title": script, "failed": True, "command": " ".join(shown), "tail": tail}
    return json.loads(out.read_text())


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(results: list[dict], quick: bool, start: float) -> str:
    m = machine()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python experiments/benchmarks/run_all.py"
        + (" --quick" if quick else "")
        + "`); every figure below names the command that made it."
        " Timings are medians over repeats; the 1-minute load average is recorded around every"
        " script: figures taken under load (more runnable processes than cores) are lower bounds.",
        "",
        f"- Date: {now}; commit {git_commit()}",
        f"- CPU: {m['cpu']}, {m['cores']} cores; torch threads {m['torch_threads']}",
        f"- Python {m['python']}, numpy {m['numpy']}, torch {m['torch']}; "
        f"GPU: {m['cuda'] or 'none'}",
        f"- Load average (1 min) at start: {start}, at end: {load()}",
        "",
        "## Targets",
        "",
    ]
    for r in results:
        for line in r.get("markdown", "").splitlines():
            if line.startswith("Target"):
                lines.append(f"- {r['title']}: {line}")
        if r.get("failed"):
            lines.append(f"- {r['title']}: FAILED (see below)")
        if r.get("data", {}).get("skipped"):
            lines.append(f"- {r['title']}: not run ({r['data']['reason']})")
    for r in results:
        lines += ["", f"## {r['title']}", ""]
        if r.get("failed"):
            lines += [f"`{r['command']}` FAILED:", "", "```", r["tail"], "```"]
            continue
        lines += [f"Command: `{r['command']}`; load {r['load']['start']} -> {r['load']['end']}."]
        lines += ["", r["markdown"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run of every script")
    p.add_argument("--out", default=str(ROOT / "experiments/results/BENCH.md"))
    args = p.parse_args()
    start = load()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = run("train_step", [], args.quick, tmp)
        results.append(train)
        fps = train.get("data", {}).get("train_fps", 0.0)
        fps_args = ["--train-fps", f"{fps:.1f}"] if fps else []
        results.append(run("sigreg", [], args.quick, tmp))
        results.append(run("data_throughput", fps_args, args.quick, tmp))
        results.append(run("polis_throughput", fps_args, args.quick, tmp))
        results.append(run("physics_throughput", [], args.quick, tmp))
        results.append(run("planning", [], args.quick, tmp))
        results.append(run("probe_throughput", [], args.quick, tmp))
        results.append(run("gpu_lewm", [], args.quick, tmp))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(results, args.quick, start))
    print(f"[run_all] wrote {out}")
    if any(r.get("failed") for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
