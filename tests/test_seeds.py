"""experiments/seeds.py: pilots probed under per-seed names, summarised as `pwm report` does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import seeds  # noqa: E402

LAW = ROOT / "experiments" / "results" / "law"


def test_the_committed_links_justice_seeds_give_the_committed_report_s_numbers(capsys):
    runs = [LAW / "runs" / f"links-justice-s{s}" for s in range(3)]
    assert seeds.main([*map(str, runs), "--name", "any-name-s7"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if "polis/justice" in line]
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    report = json.loads((LAW / "REPORT.json").read_text())["links-justice / polis / polis/justice"]
    for test, cell in zip(seeds.TESTS, cells[3:8], strict=True):
        c = report["comparisons"][test]
        assert cell.startswith(f"{c['paired_accuracy']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}]")
    he = report["history_effect"]
    assert cells[8] == f"{he['value']:.2f} [{he['ci'][0]:.2f}, {he['ci'][1]:.2f}]"
    assert cells[:3] == ["any-name-s7", "polis/justice", "3"]
    assert cells[4].endswith("(0.72, 0.65, 0.72)")  # the per-seed R
    # the dose slope: the mean and the seeds whose own CI lies above 0; no CI over seeds, since
    # these probes predate the stored rows
    assert cells[10] == f"{report['dose_slope']['mean']:+.3f} (1/3)"


def test_a_directory_without_a_probe_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert seeds.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no metrics.json" in err[0]


def test_runs_on_different_item_sets_are_refused(capsys):
    runs = [LAW / "runs" / "links-justice-s0", LAW / "runs" / "links-reciprocity-s0"]
    assert seeds.main(list(map(str, runs))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not all probed on the same item sets" in err[0]
