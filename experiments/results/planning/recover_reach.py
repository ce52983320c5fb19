"""Rebuild the reach part of runs/plan-main (crashed in plotting after the runs) from its log;
the filmstrip episode is re-run (seed 0, one episode). Kept as the record of how the reach
numbers of REPORT.md were recovered; run from the repository root with PYTHONPATH=.
"""

import ast
import json
import re
import sys

import numpy as np

from data_gen.physics import PhysicsConfig
from pwm.checkpoint import load_world_model
from pwm.planning import PRESETS
from pwm.planning.physics import PhysicsTask, run_episodes

sys.path.insert(0, "experiments")
from planning import wilson  # noqa: E402

log = open("runs/plan-main.log").read().splitlines()
task = PhysicsTask(task="reach")
part = {"task": task.meta(), "cem": PRESETS["cpu"].meta(), "controllers": {}, "sweep": []}
for line in log:
    m = re.match(r"\[planning\s+\d+s\] physics reach (\w+): (\{.*\})$", line)
    if m:
        part["controllers"][m.group(1)] = ast.literal_eval(m.group(2))
    m = re.match(r"\[planning\s+\d+s\] sweep reach (\w+) (\d+)x(\d+): ([\d.]+)$", line)
    if m:
        ctrl, s, it, p = m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4))
        topk = {16: 4, 32: 4, 64: 8, 128: 16}[s]
        k = round(p * 100)
        row = {
            "controller": ctrl,
            "samples": s,
            "topk": topk,
            "iterations": it,
            "episodes": 100,
            "success": p,
            "success_ci": wilson(k, 100),
        }
        if (s, it) == (64, 5):
            row |= part["controllers"][ctrl]
        part["sweep"].append(row)
model = load_world_model("runs/pilot-physical/version_0/checkpoints/last.ckpt").model
r = run_episodes(
    "model", PhysicsConfig(), task, 1, 0, PRESETS["cpu"], model, goal_objects=(0,), film=True
)
part["film_episode0"] = {k: np.asarray(v).tolist() for k, v in r["film"].items()}
part["film_note"] = f"a separate one-episode run (seed 0), success {bool(r['success'][0])}"
wall = float(re.search(r"\[planning\s+(\d+)s\] polis always-c", "\n".join(log)).group(1))
res = {
    "physics": {"reach": part},
    "wall_s": wall,
    "date": "2026-12-06 22:18 UTC",
    "command": "PYTHONPATH=. python experiments/planning.py --episodes 100 (its physics part; "
    "the run crashed while plotting, its numbers recovered from the log by "
    "experiments/results/planning/recover_reach.py; the filmstrip episode re-run alone, "
    "seed 0)",
    "commit": "3380213",
}
json.dump(res, open("runs/plan-main/results.json", "w"), indent=1, default=float)
print(json.dumps({k: v["success"] for k, v in part["controllers"].items()}), len(part["sweep"]))
