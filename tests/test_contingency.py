"""experiments/contingency.py: lag-1 defection rates of a Polis training set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from contingency import contingency  # noqa: E402

C, D, X = 1, 0, -1


def test_contexts_follow_the_previous_exchange_of_each_agent():
    # agents 0 and 1 meet every round (round_len 2); agent 2 meets agent 3 at rounds 0 and 2
    partner = np.full((1, 6, 4), X)
    executed = np.full((1, 6, 4), X)
    for t, acts in ((0, (C, D)), (2, (D, C)), (4, (C, D))):  # 0 and 1: tit for tat
        partner[0, t, :2] = (1, 0)
        executed[0, t, :2] = acts
    for t, acts in ((0, (C, C)), (4, (D, C))):  # 2 and 3: two rounds apart -> "other"
        partner[0, t, 2:] = (3, 2)
        executed[0, t, 2:] = acts
    table = contingency(executed, partner, round_len=2)
    assert table == {
        # agent 1 at t=2 (0 had cooperated, 1 defected) and agent 0 at t=4: both cooperate
        "consec_same pC selfD": {"n": 2, "p_defect": 0.0},
        # agent 0 at t=2 (1 had defected on it) and agent 1 at t=4: both retaliate
        "consec_same pD selfC": {"n": 2, "p_defect": 1.0},
        # agents 2 and 3 met two rounds apart: agent 2 defects, agent 3 cooperates
        "other pC selfC": {"n": 2, "p_defect": 0.5},
    }


def test_command_line_prints_the_table_and_rejects_a_physics_set(toy_dataset, tmp_path):
    script = str(ROOT / "experiments" / "contingency.py")
    res = subprocess.run([sys.executable, script, str(toy_dataset)], capture_output=True, text=True)
    assert res.returncode != 0 and "not polis" in res.stderr and res.stderr.count("\n") == 1
    missing = subprocess.run([sys.executable, script, str(tmp_path / "nope")],
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode != 0 and "contingency.py: error" in missing.stderr
