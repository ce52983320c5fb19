"""experiments/oracle_readout.py: an oracle model's predicted cues, mapped back to state units."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from oracle_readout import by_crowding, readout  # noqa: E402

from pwm.models import EncoderConfig, PredictorConfig, WorldModel, build_world_model  # noqa: E402
from pwm.module import JEPAModule  # noqa: E402

LAYOUT = ["x", "y", "vx", "vy", "cue_c", "cue_d"]


class Constant(nn.Module):
    """A predictor that always predicts the same standardised embedding."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.value = value

    def forward(self, z, actions, last=False):
        out = self.value.expand_as(z)
        return out[:, -1:] if last else out


def oracle() -> WorldModel:
    return build_world_model(observation="state", obs_size=12, action_dim=2, window=5, history=4,
                             encoder=EncoderConfig(width=8, depth=1),
                             predictor=PredictorConfig(16, 1, 2, 8, 32, 0.0),
                             target="oracle")  # fmt: skip


def test_predictions_are_mapped_back_to_state_units_per_agent_and_context():
    m = oracle()
    bn = m.projector.bn
    bn.running_mean.copy_(torch.arange(12.0) / 100)
    bn.running_var.copy_(torch.full((12,), 4.0 - bn.eps))  # std 2
    value = torch.zeros(12)
    value[0 * 6 + 4], value[0 * 6 + 5] = 0.25, 0.05  # agent 0: cue_c 0.5 + 0.04, cue_d 0.1 + 0.05
    m.predictor = Constant(value)
    items = [
        {"condition": "trust_C", "episode": 0, "t_star": 4, "agent_a": 0, "agent_b": 1},
        {"condition": "provoked_D", "episode": 1, "t_star": 4, "agent_a": 1, "agent_b": 0},
    ]
    state, actions = np.zeros((2, 6, 12), np.float32), np.zeros((2, 6, 2), np.float32)
    out = readout(m, 4, state, actions, items, LAYOUT)
    assert out["trust"]["a_cue_c"] == pytest.approx(0.54) and out["trust"]["a_cue_d"] == 0.15
    assert out["trust"]["a_p_defect"] == pytest.approx(0.15 / 0.69, abs=1e-4)
    assert out["trust"]["b_cue_c"] == pytest.approx(0.10) and out["trust"]["b_cue_d"] == 0.11
    assert out["provoked"]["b_cue_c"] == pytest.approx(0.54)  # B is agent 0 there
    # A's cue error in standardised units: predicted (0.25, 0.05) against the one-hot cue,
    # (1 - 0.04) / 2 and (0 - 0.05) / 2 for a C (agent 0's means), and so on
    want_c = (0.25 - 0.96 / 2) ** 2 + (0.05 + 0.05 / 2) ** 2
    want_d = (0.25 + 0.04 / 2) ** 2 + (0.05 - 0.95 / 2) ** 2
    assert out["trust"]["a_err_if_c"] == pytest.approx(want_c, abs=1e-4)
    assert out["trust"]["a_err_if_d"] == pytest.approx(want_d, abs=1e-4)
    # in the provoked context A is agent 1, whose means are 0.10 and 0.11
    want = (0.0 - 0.90 / 2) ** 2 + (0.0 + 0.11 / 2) ** 2  # agent 1 is predicted 0
    assert out["provoked"]["a_err_if_c"] == pytest.approx(want, abs=1e-4)
    with pytest.raises(ValueError, match="no provoked_D items"):
        readout(m, 4, state, actions, items[:1], LAYOUT)


def test_r_at_the_event_is_split_by_the_agents_within_reach_of_a():
    m = oracle()
    value = torch.zeros(12)
    value[1 * 6 + 5] = 3.0  # agent 1 (A) predicted to show D: a defection is the smaller error
    m.predictor = Constant(value)
    items = [{"condition": "provoked_D", "episode": e, "t_star": 4, "agent_a": 1, "agent_b": 0}
             for e in range(3)]  # fmt: skip
    state, actions = np.zeros((3, 6, 12), np.float32), np.zeros((3, 6, 2), np.float32)
    pos = np.zeros((3, 6, 2, 2), np.float32)  # (episodes, frames, agents, xy): 2 agents
    pos[:, :, 0] = [0.1, 0.0]  # B within reach 0.2 of A (at the origin) everywhere
    pos[1, 3, 0] = [0.5, 0.0]  # episode 1: B out of reach at t* - 1, the frame that counts
    pos[2, 2, 0] = [0.5, 0.0]  # episode 2: out of reach two frames before: does not count
    rows = by_crowding(m, 4, state, actions, pos, items, LAYOUT, reach=0.2)
    assert rows == [{"others_in_reach": 0, "items": 1, "r_at_event": 1.0},
                    {"others_in_reach": 1, "items": 2, "r_at_event": 1.0}]  # fmt: skip
    value[1 * 6 + 5], value[1 * 6 + 4] = 0.0, 3.0  # now A predicted to show C: R fails
    rows = by_crowding(m, 4, state, actions, pos, items, LAYOUT, 0.2)
    assert [r["r_at_event"] for r in rows] == [0.0, 0.0]


def test_command_line_refuses_a_model_that_is_not_an_oracle(tmp_path):
    m = JEPAModule(observation="state", obs_size=12, window=5, history=4, embed_dim=8,
                   encoder=EncoderConfig(width=8, depth=1))  # fmt: skip
    ckpt = tmp_path / "m.ckpt"
    torch.save({"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict()}, ckpt)
    script = str(ROOT / "experiments" / "oracle_readout.py")
    res = subprocess.run([sys.executable, script, str(ckpt), str(tmp_path)],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode != 0 and "not an oracle model" in res.stderr
    assert res.stderr.count("\n") == 1
