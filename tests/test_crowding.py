"""experiments/crowding.py: a named comparison split by the agents within reach of A."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from crowding import CrowdingError, crowding, paired_with_b  # noqa: E402


def per_item(model: list[float]) -> dict:
    # 3 groups of (provoked_C, provoked_D); item i is episode i; A is agent 1 everywhere
    cond = ["provoked_C", "provoked_D"] * 3
    return {"item_id": list(range(6)), "condition": cond, "group_id": [0, 0, 1, 1, 2, 2],
            "t_star": [4] * 6, "agent_a": [1] * 6, "agent_b": [0] * 6,
            "scores": {"model": {"max": model}, "flat": {"max": [1.0] * 6}}}  # fmt: skip


def test_pairs_are_split_by_the_agents_near_a_at_the_last_context_frame():
    pos = np.zeros((6, 6, 3, 2))  # (episodes, frames, agents, xy); A (1) at the origin
    pos[:, :, 0] = [0.1, 0.0]  # B (0) within reach 0.2 everywhere
    pos[:, :, 2] = [0.9, 0.9]  # a third agent far away ...
    pos[3, 2, 2] = [0.0, 0.05]  # ... except near A in group 1, at t* - 2 (the frame that counts)
    pos[5, 3, 2] = [0.0, 0.1]  # group 2: near A at t* - 1, not counted with frame skip 2
    # group 0: R right (C more surprising); group 1: wrong; group 2: right
    out = crowding(per_item([2.0, 1.0, 1.0, 2.0, 3.0, 1.0]), pos, 0.2, "R", frame_skip=2)
    want = [{"others_in_reach": 1, "groups": 2, "paired_accuracy": 1.0},
            {"others_in_reach": 2, "groups": 1, "paired_accuracy": 0.0}]  # fmt: skip
    assert out["model"] == want
    assert [r["paired_accuracy"] for r in out["flat"]] == [0.5, 0.5]  # ties count 0.5
    # closest-first pairing at t* - 2: A-B in groups 0 and 2; in group 1 the third agent is
    # nearer to A (0.05) than B (0.1), so A pairs with it
    assert paired_with_b(per_item([0.0] * 6), pos, 0.2, frame_skip=2) == pytest.approx(2 / 3)


def test_bad_input(tmp_path):
    with pytest.raises(CrowdingError, match="unknown test"):
        crowding(per_item([0.0] * 6), np.zeros((6, 6, 3, 2)), 0.2, "Z")
    script = str(ROOT / "experiments" / "crowding.py")
    res = subprocess.run([sys.executable, script, str(tmp_path), str(tmp_path)],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 2 and "no metrics.json" in res.stderr
    assert res.stderr.count("\n") == 1
