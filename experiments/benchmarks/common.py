"""What every benchmark script shares: timing, machine description, load and the result file.

Each script in this folder runs on its own (`--quick` for a smoke run) and, given `--json PATH`,
writes a result: {"title", "command", "markdown", "data", "load"}; `run_all.py` gathers them into
experiments/results/BENCH.md. Timings are medians over repeats and every result carries the
1-minute load average at its start and end (os.getloadavg): on a shared machine, a figure taken
under load is a lower bound on speed, and the load says by how much to distrust it.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path


def load() -> float:
    """1-minute load average."""
    return round(os.getloadavg()[0], 2)


def timings(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Sorted wall times of `fn()` in seconds over `repeats` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `fn()` in seconds over `repeats` calls, after `warmup` calls."""
    times = timings(fn, repeats, warmup)
    return times[len(times) // 2]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    """CPU model, cores, library versions and thread settings of this process."""
    import numpy as np
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def command() -> str:
    """The command line that ran this script, relative to the repository root."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        script = Path(script.name)
    args = [a for a in sys.argv[1:]]
    if "--json" in args:  # the result file is run_all's business, not part of the figure
        i = args.index("--json")
        del args[i : i + 2]
    return shlex.join(["python", str(script), *args])


def table(header: list[str], rows: list[list]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def finish(title: str, markdown: str, data: dict, json_path: str | None, load_start: float):
    """Print the markdown section and, if asked, write the result file for run_all."""
    result = {
        "title": title,
        "command": command(),
        "markdown": markdown,
        "data": data,
        "load": {"start": load_start, "end": load()},
    }
    print(f"## {title}\n\n`{result['command']}`  (load {load_start} -> {result['load']['end']})")
    print(markdown)
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=1))


def add_rate_arguments(p) -> None:
    """The options shared by the throughput scripts: the training rate to compare, JSON output."""
    p.add_argument(
        "--train-fps",
        type=float,
        default=0.0,
        help="frames/s the training step consumes (train_step.py); 0: not compared",
    )
    p.add_argument("--json", help="write the result here (for run_all.py)")
