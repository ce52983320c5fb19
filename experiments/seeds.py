"""Probe runs of one model at several seeds, summarised as `pwm report` summarises a group.

    python experiments/seeds.py PROBE_DIR [PROBE_DIR ...] [--name NAME]

Why: `pwm report` groups probe runs by the model name each was probed under; pilots probed with
a per-seed `--name` (`links-events-justice-s0`, `-s1`, ...) would land in groups of one. This
reads the runs (metrics.json or a curated metrics.json.gz), treats them as training seeds of one
model (named NAME, default the first run's name without its `-s<seed>` tail), and prints one
markdown row per Polis item set with the report's own summary (pwm.probes.report.summarise):
M2, R, M1, M1C, Q and HE as the mean over seeds with the hierarchical bootstrap CI (seeds, then
pairs) and the per-seed values, the frame-only observer's R, and the dose-response slope: its
mean over seeds, its CI over seeds (the same hierarchical bootstrap, for probes that store the
per-group differences) and how many seeds' own CIs lie above 0. The runs are not changed.

Bad input (a directory without a probe run, runs of different item sets or worlds) is one line
on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rerun import load_metrics  # metrics.json, or a committed folder's metrics.json.gz

from pwm.probes.config import ProbeError
from pwm.probes.report import group_runs, summarise

TESTS = ("M2", "R", "M1", "M1C", "Q")


def rows(runs: list[dict], name: str) -> list[str]:
    for run in runs:  # in memory only: one model name, so the report groups the seeds
        run["model"]["name"] = name
    groups = group_runs(runs)
    if any(len(members) != len(runs) for members in groups.values()):
        raise ProbeError("the runs were not all probed on the same item sets")
    out = []
    for (_, _, items), members in groups.items():
        s = summarise(members)
        cells = [name, items, str(s["seeds"])]
        for test in TESTS:
            c = s["comparisons"].get(test)
            per = [e["scorers"]["model"]["comparisons"][test]["max"]["paired_accuracy"]
                   for _, e in members] if c else []  # fmt: skip
            cells.append(f"{c['paired_accuracy']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}] "
                         f"({', '.join(f'{v:.2f}' for v in per)})" if c else "–")  # fmt: skip
        he = s.get("history_effect")
        cells.append(f"{he['value']:.2f} [{he['ci'][0]:.2f}, {he['ci'][1]:.2f}]" if he else "–")
        fo = s["comparisons"].get("R", {}).get("baselines", {}).get("frame_only")
        cells.append(f"{fo:.2f}" if fo is not None else "–")
        d = s.get("dose_slope")
        over = f" [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" if d and d.get("ci") else ""
        cells.append(f"{d['mean']:+.3f}{over} ({d['seeds_ci_above_0']}/{len(d['per_seed'])})"
                     if d else "–")  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="`pwm probe` output directories")
    p.add_argument("--name", help="the model's name (default: the first run's, seed dropped)")
    args = p.parse_args(argv)
    try:
        runs = [load_metrics(d) for d in args.runs]
        name = args.name or re.sub(r"-s\d+$", "", runs[0]["model"]["name"])
        lines = rows(runs, name)
    except (ValueError, KeyError) as e:  # ProbeError, RerunError, JSONDecodeError
        print(f"seeds.py: error: {e}", file=sys.stderr)
        return 2
    head = ["model", "items", "seeds", *TESTS, "HE", "frame-only R", "dose slope (CI > 0)"]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
