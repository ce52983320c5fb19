"""experiments/visible_history.py: A's answer to the ego's defection by the visible history."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from data_gen.agents import C, D
from pwm.data.format import finalize, write_shard

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from visible_history import main  # noqa: E402

ROUNDS, N, ROUND_LEN = 12, 3, 6


def episode(meetings: dict[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Partner and executed arrays (frames, N) of one episode where the ego (0) and A (1) meet at
    the given rounds with (ego's action, A's action); agent 2 never meets anyone."""
    frames = ROUND_LEN * (ROUNDS + 1) + 1
    partner = np.full((frames, N), -1, np.int8)
    executed = np.full((frames, N), -1, np.int8)
    for r, (ego, a) in meetings.items():
        t = ROUND_LEN * (r + 1)  # round r's exchange frame
        partner[t, 0], partner[t, 1] = 1, 0
        executed[t, 0], executed[t, 1] = ego, a
    return partner, executed


@pytest.fixture(scope="module")
def polis(tmp_path_factory) -> Path:
    """Hand-made episodes (a row: the ego defects on a cooperating A at r, they meet at r + 1):
    0. first meeting ever at r = 5; A defects at 6;
    1. met once at r = 0 (mutual C), then the ego's D at r = 9; A cooperates at 10;
    2. mutual C at r = 3, 4, the ego's D at 5; A defects at 6 (the items' K = 3);
    3. no row (a mutual D, and a D with no meeting at the next round);
    4. A's D at r = 6, the ego's D at 7 (a retaliation); A defects at 8: `visible, other`."""
    eps = [
        episode({5: (D, C), 6: (C, D)}),
        episode({0: (C, C), 9: (D, C), 10: (C, C)}),
        episode({3: (C, C), 4: (C, C), 5: (D, C), 6: (C, D)}),
        # no rows: A defected too (r = 2); they do not meet at r + 1 (r = 8, a gap at 9)
        episode({2: (D, D), 3: (C, D), 8: (D, C), 10: (C, D)}),
        # one row, `visible, other`: the earlier consecutive meeting was not mutual C
        episode({6: (C, D), 7: (D, C), 8: (C, D)}),
    ]
    root = tmp_path_factory.mktemp("data") / "polis"
    root.mkdir()
    write_shard(root, 0, {"partner": np.stack([p for p, _ in eps]),
                          "executed": np.stack([e for _, e in eps])})  # fmt: skip
    meta = {
        "world": "polis",
        "kind": "dataset",
        "config": {"round_len": ROUND_LEN, "law": "justice"},
    }
    assert finalize(root, 1, meta)
    return root


def run(data: Path, out: Path, *extra: str) -> dict:
    main([str(data), "--json", str(out), *extra])
    return json.loads(out.read_text())


def test_rows_fall_in_the_group_the_context_shows(polis, tmp_path, capsys):
    res = run(polis, tmp_path / "h8.json")
    printed = capsys.readouterr().out
    assert printed.startswith("# What a context of 8 rounds") and "| first | 1 | 1.000 |" in printed
    g = res["groups"]
    assert {k: (v["rows"], v["a_defects"]) for k, v in g.items()} == {
        "first": (1, 1),
        "hidden": (1, 0),  # the r = 0 meeting is 9 rounds before r = 9: outside 8 rounds
        "visible K=3": (1, 1),
        "visible, other": (1, 1),
    }
    assert list(g) == ["first", "hidden", "visible K=3", "visible, other"]
    assert res["one_meeting"] == {"rows": 2, "a_defects": 1, "rate": 0.5}
    assert res["episodes"] == 5 and res["law"] == "justice" and res["history"] == 8


def test_the_context_boundary(polis, tmp_path):
    """Rounds r - H + 1 .. r are visible: the meeting at r - 9 = 0 needs H >= 10."""
    assert "hidden" in run(polis, tmp_path / "h9.json", "--history", "9")["groups"]
    g = run(polis, tmp_path / "h10.json", "--history", "10")["groups"]
    assert "hidden" not in g and g["visible, other"]["rows"] == 2  # met at 0 and 9, not 8
    # with a 2-round context episode 2's meeting at r = 3 is out of sight: it shows K = 2
    g = run(polis, tmp_path / "h2.json", "--history", "2")["groups"]
    assert g["visible K=2"]["rows"] == 1 and "visible K=3" not in g
    assert g["visible, other"]["rows"] == 1  # episode 4's non-mutual meeting stays visible


@pytest.mark.parametrize("extra, message", [
    (["--history", "0"], "--history must be >= 1"),
    (["--shards", "0"], "--shards must be >= 1"),
])  # fmt: skip
def test_bad_input_is_one_line_exit_2_nothing_written(polis, tmp_path, capsys, extra, message):
    out = tmp_path / "out.json"
    with pytest.raises(SystemExit) as e:
        main([str(polis), "--json", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("meta, message", [
    ({"world": "physics", "kind": "dataset"}, "not polis"),
    ({"world": "polis", "kind": "items", "config": {"round_len": 6}}, "not a training set"),
    ({"world": "polis", "kind": "dataset", "config": {}}, "no round_len"),
])  # fmt: skip
def test_not_a_polis_training_set_is_refused(tmp_path, capsys, meta, message):
    root = tmp_path / "set"
    root.mkdir()
    p, e = episode({5: (D, C), 6: (C, D)})
    write_shard(root, 0, {"partner": p[None], "executed": e[None]})
    assert finalize(root, 1, meta)
    with pytest.raises(SystemExit) as exc:
        main([str(root)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1


def test_a_json_outside_an_existing_directory_is_refused(polis, tmp_path, capsys):
    out = tmp_path / "missing" / "out.json"
    with pytest.raises(SystemExit) as e:
        main([str(polis), "--json", str(out)])
    err = capsys.readouterr()
    assert e.value.code == 2 and "not a file in an existing directory" in err.err
    assert len(err.err.strip().splitlines()) == 1 and err.out == "" and not out.parent.exists()
