"""experiments/avoidance.py: the delayed avoidance after a betrayal in a Polis training set."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from data_gen.cli import main as data_main
from pwm.data.format import finalize, write_shard

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from avoidance import STEPS, main  # noqa: E402

S2, S4 = STEPS.index(2), STEPS.index(4)


@pytest.fixture(scope="module")
def polis_by_delay(tmp_path_factory) -> dict[int, Path]:
    """Two small Polis sets (128 episodes of 20 rounds) whose agents act on trust changes after
    `react_delay` 2 and 4 rounds (about a second each)."""
    out = {}
    for delay in (2, 4):
        path = tmp_path_factory.mktemp("data") / f"polis-delay{delay}"
        argv = ["generate", "polis", "--out", str(path), "--episodes", "128", "--frames", "121"]
        argv += ["--image-size", "16", "--law", "reciprocity", "--react-delay", str(delay)]
        assert data_main([*argv, "--seed", "0"]) == 0
        out[delay] = path
    return out


def run(data: Path, out: Path, *extra: str) -> dict:
    main([str(data), "--json", str(out), *extra])
    return json.loads(out.read_text())


def test_the_onset_of_the_move_away_follows_react_delay(polis_by_delay, tmp_path, capsys):
    res = run(polis_by_delay[2], tmp_path / "delay2.json")
    printed = capsys.readouterr().out
    assert (
        printed.startswith("# Delayed avoidance") and "python experiments/avoidance.py" in printed
    )
    assert res["episodes"] == 128 and res["shards"] == res["num_shards"] == 2
    assert res["config"] == {"law": "reciprocity", "react_delay": 2}
    # counts: a pair exchange is a mutual C, a betrayal (one direction) or a mutual D
    ep, rows = res["per_episode"], res["rows"]
    assert ep["mutual_c"] + ep["betrayals"] <= ep["exchanges"]
    assert 0 < ep["ego_unprovoked"] <= ep["unprovoked"] <= ep["betrayals"]
    assert 0 < rows["tremble"] <= rows["unprovoked"] <= rows["betrayal"]
    for name in ("unprovoked", "tremble"):
        b = res["distance_change"][name]
        assert b["n"] == rows[name]
        assert len(b["diff"]) == len(b["se"]) == len(b["control_sd"]) == len(STEPS)
        assert all(math.isfinite(v) for v in b["diff"] + b["se"])  # pre-event ones included
    assert len(res["radial_velocity_tremble"]["diff"]) == 6
    assert set(res["tremble_by_victim"]) == {
        "reciprocator", "generous", "grim", "cooperator", "defector", "machiavellian",
    }  # fmt: skip
    r2 = res["predictability"]["r2"]
    assert set(r2) == {"history", "outcome", "unprovoked", "trust"}
    assert 0 < r2["history"] < r2["outcome"] < 1  # round r's outcome predicts the move away

    # The trembled betrayal (as-if random) makes j move away between rounds r+2 and r+3 with
    # react_delay 2, not before; with react_delay 4 nothing happens there, and j moves away
    # two rounds later. Wrong windows, rows or controls would not show this.
    t2 = res["distance_change"]["tremble"]
    diff, se = np.array(t2["diff"]), np.array(t2["se"])
    assert diff[S2] > 5 * se[S2] and diff[S2] > 3 * np.abs(diff[: STEPS.index(1) + 1]).max()
    t4 = run(polis_by_delay[4], tmp_path / "delay4.json")["distance_change"]["tremble"]
    diff, se = np.array(t4["diff"]), np.array(t4["se"])
    assert abs(diff[S2]) < 2 * se[S2] and diff[S4] > 5 * se[S4]
    # the radial velocity of j away from i jumps at r+3 (react_delay 2), not before
    v = res["radial_velocity_tremble"]["diff"]
    assert v[3] > 5 * max(abs(x) for x in v[:3])


def test_shards_selects_the_first_shards(polis_by_delay, tmp_path, capsys):
    res = run(polis_by_delay[2], tmp_path / "one.json", "--shards", "1")
    assert res["shards"] == 1 and res["episodes"] == 64
    again = run(polis_by_delay[2], tmp_path / "again.json", "--shards", "1")
    assert again.pop("command") != res.pop("command") and again == res  # deterministic


def fake_polis(root: Path) -> Path:
    """A Polis-labelled dataset without the arrays the analysis needs."""
    root.mkdir()
    write_shard(root, 0, {"state": np.zeros((2, 50, 36), np.float32)})
    assert finalize(root, 1, {"world": "polis", "config": {"round_len": 6}})
    return root


def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    polis_by_delay, toy_dataset, tmp_path, capsys
):
    cases = [
        ([str(tmp_path / "nope")], "not a directory"),
        ([str(toy_dataset)], "not polis"),
        ([str(fake_polis(tmp_path / "fake"))], "no array"),
        ([str(polis_by_delay[2]), "--shards", "0"], "--shards must be >= 1"),
    ]
    out = tmp_path / "out.json"
    for argv, message in cases:
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--json", str(out)])
        err = capsys.readouterr()
        assert exc.value.code == 2 and message in err.err, (argv, err.err)
        assert err.err.startswith("avoidance.py: error:") and err.err.count("\n") == 1
        assert err.out == "" and not out.exists()
