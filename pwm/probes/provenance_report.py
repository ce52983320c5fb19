"""The provenance section of `pwm report`: which runs were made at which commit, and which differ.

Each probe run's metrics.json carries a `provenance` block (pwm/provenance.py): the probe's own
commit and the invocations of the training run behind its checkpoint, with the manifest sha256
of every dataset either read. This module groups the runs by (training commit, probe commit) and
flags a run whose code differs from the report's (another commit, uncommitted changes, or no
commit known) or whose dataset at some path differs from the reference for that path: the
dataset now on disk there when there is one (what a re-run would read), else the manifest most
runs used. Runs probed before provenance existed are listed as "no provenance recorded", never
guessed. It is kept apart from report.py so that the report's tables and this lineage change
independently; its JSON goes to REPORT_provenance.json (REPORT.json's keys are the groups).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pwm.data.format import MANIFEST, sha256_file
from pwm.provenance import NONE_RECORDED, UNKNOWN, git_state

SHOWN = 6  # run names listed per line of the markdown; the JSON lists all


def _code(git: dict) -> dict:
    return {"commit": git["commit"], "dirty": git["dirty"]}


def _run(prov: dict) -> dict:
    """One probe run's lineage: probe and training code, and {dataset path: manifest sha}."""
    training = prov["checkpoint"]["run"]
    datasets = {d["path"]: d["manifest_sha256"] for d in prov["inputs"].values()}
    code = NONE_RECORDED if training == NONE_RECORDED else []
    for r in [] if training == NONE_RECORDED else training:
        if _code(r["git"]) not in code:
            code.append(_code(r["git"]))
        datasets.update({d["path"]: d["manifest_sha256"] for d in r["inputs"].values()})
    return {"probe": _code(prov["git"]), "training": code, "datasets": datasets}


def summarise(dirs: list[str], runs: list[dict]) -> dict:
    """The report's provenance: its own commit, each run's lineage and flags, the datasets."""
    here = _code(git_state())
    lineage = {
        Path(d).name: _run(r["provenance"]) if "provenance" in r else NONE_RECORDED
        for d, r in zip(dirs, runs, strict=True)
    }
    known = {n: v for n, v in lineage.items() if v != NONE_RECORDED}
    datasets = {}
    for path in sorted({p for v in known.values() for p in v["datasets"]}):
        used = Counter(v["datasets"][path] for v in known.values() if path in v["datasets"])
        on_disk = Path(path) / MANIFEST
        if on_disk.is_file():
            ref, source = sha256_file(on_disk), "on disk"
        else:
            ref, source = used.most_common(1)[0][0], "most runs"
        differ = sorted(n for n, v in known.items() if v["datasets"].get(path, ref) != ref)
        datasets[path] = {"reference": ref, "source": source, "runs_differing": differ}
    for name, v in known.items():
        codes = [v["probe"], *(v["training"] if v["training"] != NONE_RECORDED else [])]
        v["flags"] = sorted(
            {"code differs from the report's" for c in codes if c["commit"] != here["commit"]}
            | {"uncommitted changes" for c in codes if c["dirty"] is True}
            | {"commit unknown" for c in codes if UNKNOWN in (c["commit"], c["dirty"])}
            | {"training code unrecorded" for _ in [0] if v["training"] == NONE_RECORDED}
            | {f"dataset differs: {p}" for p, d in datasets.items() if name in d["runs_differing"]}
        )
    return {"report": here, "runs": lineage, "datasets": datasets}


def _short(code) -> str:
    if code == NONE_RECORDED:
        return NONE_RECORDED
    codes = code if isinstance(code, list) else [code]
    return ", ".join(c["commit"][:7] + (" (dirty)" if c["dirty"] is True else "") for c in codes)


def _names(names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def lines(summary: dict) -> list[str]:
    """The markdown section: commits by run, then the flagged runs."""
    rows: dict[tuple[str, str], list[str]] = {}
    for name, v in summary["runs"].items():
        key = (
            (NONE_RECORDED, "–")
            if v == NONE_RECORDED
            else (_short(v["training"]), _short(v["probe"]))
        )
        rows.setdefault(key, []).append(name)
    out = [
        "## Provenance",
        "",
        f"Report made at commit {_short(summary['report'])}. Runs by the commit that trained "
        "and the one that probed them (REPORT_provenance.json has every run's record):",
        "",
        "| training commit | probe commit | runs |",
        "| --- | --- | --- |",
        *(f"| {t} | {p} | {len(n)}: {_names(n)} |" for (t, p), n in rows.items()),
        "",
    ]
    flagged: dict[str, list[str]] = {}
    for name, v in summary["runs"].items():
        for flag in [] if v == NONE_RECORDED else v["flags"]:
            flagged.setdefault(flag, []).append(name)
    if flagged:
        out += [f"- {flag}: {len(n)} run(s): {_names(n)}" for flag, n in flagged.items()] + [""]
    return out
