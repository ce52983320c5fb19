"""`python experiments/reproduce.py --rerun PROBE_DIR`: re-run one probed run from its provenance.

A probe folder's metrics.json (or the committed metrics.json.gz) records in its `provenance`
block the probe's command, the command of the training run behind its checkpoint and, for every
dataset either read, its manifest sha256 and the command that generated it (pwm/provenance.py).
This re-makes all of it in a fresh scratch folder `runs/rerun-<probe>-<UTC time>/` (never over
the recorded run): each dataset by its recorded `pwm generate|items` command, the fit by its
recorded `pwm fit` command, the probe by its recorded `pwm probe` command, with only the paths
rewritten. It then prints whether each dataset's manifest and the checkpoint are byte-identical,
per named comparison the paired accuracy, CI and d_z of both runs, and the max abs difference
over every number of metrics.json. Exit code 0 when every number is identical, 1 otherwise.

Why in the study driver and not a `pwm` subcommand: a re-run chains several `pwm` commands, as
the rest of reproduce.py does (runner.py runs each in its own process), and pwm/cli.py stays the
entry point of single steps. The code is that of the current checkout: run it from the recorded
commit (`git worktree add`) to separate code changes from data and machine differences.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from pwm.data.format import MANIFEST, sha256_file
from pwm.provenance import NONE_RECORDED, relative

DATA_FLAGS = ("--items", "--calib", "--probe-data", "--consequence")
# generation options that only split the work or clear the folder: the bytes do not depend on
# them, and the re-run makes each dataset whole in one job
SPLIT = {"--shard": 1, "--num-shards": 1, "--workers": 1, "--overwrite": 0}
CKPT = "{the re-run's last.ckpt}"


class RerunError(ValueError):
    """A probe folder that cannot be re-run (no provenance, unknown commands)."""


def load_metrics(probe_dir: Path) -> dict:
    """metrics.json of a probe folder, or the gzipped copy a committed folder holds."""
    for name, read in (("metrics.json", Path.read_bytes), ("metrics.json.gz", _gunzip)):
        if (probe_dir / name).is_file():
            return json.loads(read(probe_dir / name))
    raise RerunError(f"{probe_dir} has no metrics.json(.gz): not a `pwm probe` output folder")


def _gunzip(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def _norm(path: str) -> str:
    return os.path.normpath(path)


def _rewrite(
    argv: list[str], values: dict[str, str], mapping: dict[str, str], drop: dict[str, int]
) -> list[str]:
    """argv with the value of each flag in `values` replaced (appended if absent), each dataset
    path in `mapping` (as the value of one of DATA_FLAGS) replaced, and the flags in `drop`
    (flag: how many values it takes) left out. `--flag V` and `--flag=V` are both understood."""
    out, rest, seen = [], list(argv), set()
    while rest:
        arg = rest.pop(0)
        flag, eq, value = arg.partition("=")
        if not eq:
            flag, value = arg, None
            takes = drop.get(flag, 1) if flag in (*values, *DATA_FLAGS, *drop) else 0
            if takes and rest:
                value = rest.pop(0)
        if flag in drop:
            continue
        if flag in values:
            seen.add(flag)
            value = values[flag]
        elif flag in DATA_FLAGS and value is not None:
            value = mapping.get(_norm(value), value)
        out += [flag] if value is None else [f"{flag}={value}"] if eq else [flag, value]
    return out + [a for f in values if f not in seen for a in (f, values[f])]


def plan(metrics: dict, scratch: Path) -> tuple[list[list[str]], Path, dict]:
    """The `pwm` commands that re-make a probe run in `scratch`, its probe folder, and
    {recorded dataset path: (recorded manifest sha256, re-made path)}."""
    prov = metrics.get("provenance")
    if prov is None:
        raise RerunError(f"{NONE_RECORDED}: the run was probed before pwm recorded provenance")
    training = prov["checkpoint"]["run"]
    if training == NONE_RECORDED:
        raise RerunError(f"the checkpoint {prov['checkpoint']['path']}: {NONE_RECORDED}")
    inputs = [*prov["inputs"].values(), *(d for r in training for d in r["inputs"].values())]
    datasets, commands = {}, []
    for d in inputs:
        path = _norm(d["path"])
        if path in datasets:
            continue
        if d["generated_by"] == NONE_RECORDED:
            raise RerunError(f"dataset {d['path']}: {NONE_RECORDED} (cannot re-generate it)")
        argv = d["generated_by"][0]["argv"]
        if argv[:1] != ["pwm"] or argv[1:2] not in (["generate"], ["items"]):
            raise RerunError(f"dataset {d['path']} was not made by `pwm generate|items`: {argv}")
        new = scratch / "data" / str(len(datasets)) / Path(path).name  # the name names items
        datasets[path] = (d["manifest_sha256"], new)
        commands.append(_rewrite(argv[1:], {"--out": str(new)}, {}, SPLIT))
    fit = training[0]["argv"]  # the first invocation: a resumed run added `--ckpt_path last`
    if fit[:2] != ["pwm", "fit"]:
        raise RerunError(f"the checkpoint was not made by `pwm fit`: {fit}")
    if "data" not in training[0]["inputs"]:
        raise RerunError(f"the training run of {prov['checkpoint']['path']} records no dataset")
    data = _norm(training[0]["inputs"]["data"]["path"])
    fit_args = _rewrite(fit[1:], {}, {}, {"--ckpt_path": 1})
    fit_args += [f"--data.path={datasets[data][1]}", f"--trainer.default_root_dir={scratch}",
                 f"--trainer.logger.init_args.save_dir={scratch}"]  # fmt: skip
    commands.append(fit_args)
    out = scratch / "probe"
    mapping = {p: str(new) for p, (_, new) in datasets.items()}
    # --ckpt: the fit's last.ckpt, found once the fit has made it (see `rerun`)
    values = {"--ckpt": CKPT, "--out": str(out)}
    commands.append(_rewrite(prov["argv"][1:], values, mapping, {}))
    return commands, out, datasets


def numbers(obj, prefix: str = "") -> dict[str, float | None]:
    """Every number (and null) of a JSON tree by its path; strings are left out."""
    if isinstance(obj, dict):
        return {
            k: v for key, sub in obj.items() for k, v in numbers(sub, f"{prefix}/{key}").items()
        }
    if isinstance(obj, list):
        return {k: v for i, sub in enumerate(obj) for k, v in numbers(sub, f"{prefix}/{i}").items()}
    if obj is None or isinstance(obj, bool | int | float):
        return {prefix: None if obj is None else float(obj)}
    return {}


def _field(key: str) -> str:
    """A number's path without its list indices: the field it belongs to."""
    return "/".join(p for p in key.split("/") if not p.isdigit())


def _part(key: str) -> str:
    """The first three names of a number's field (how differences are grouped for print)."""
    return "/".join(_field(key).split("/")[1:4])


def _diff(a: float | None, b: float | None) -> float:
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return 0.0 if (a is None) == (b is None) else math.inf
    return abs(a - b)


def _cell(block: dict) -> str:
    ci = block.get("ci") or [None, None]
    f = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    return f"{f(block['paired_accuracy'])} [{f(ci[0])}, {f(ci[1])}] d_z {f(block.get('d_z'))}"


def compare(old: dict, new: dict) -> tuple[list[str], float]:
    """Lines comparing two probe runs' metrics (provenance left out) and the max abs difference
    over every recorded number (one missing from the re-run counts as infinite; one the re-run
    adds is listed, not compared)."""
    primary = old["config"]["primary"]
    lines = [f"comparisons (model, {primary}): recorded | re-run | max |difference|"]
    new_items = {e["name"]: e for e in new["items"]}
    for entry in old["items"]:
        other = new_items.get(entry["name"], {"scorers": {"model": {"comparisons": {}}}})
        for name, blocks in entry["scorers"]["model"]["comparisons"].items():
            a, b = blocks[primary], other["scorers"]["model"]["comparisons"].get(name)
            if b is None:
                lines.append(f"  {entry['name']} {name}: {_cell(a)} | missing")
                continue
            b = b[primary]
            d = max(_diff(a.get(k), b.get(k)) for k in ("paired_accuracy", "d_z"))
            ci = zip(a.get("ci") or [None] * 2, b.get("ci") or [None] * 2, strict=True)
            d = max([d, *(_diff(x, y) for x, y in ci)])
            lines.append(f"  {entry['name']} {name}: {_cell(a)} | {_cell(b)} | {d:.3g}")
    strip = lambda m: {k: v for k, v in m.items() if k != "provenance"}  # noqa: E731
    x, y = numbers(strip(old)), numbers(strip(new))
    parts: dict[str, float] = {}
    # numbers only the re-run has under a field the recording never had (a probe made before
    # the dose slope kept its rows) are listed, not compared; every recorded number is compared,
    # and a number only the re-run has under a recorded field (one more list element) differs
    recorded = {_field(k) for k in x}
    added = {k for k in y.keys() - x.keys() if _field(k) not in recorded}
    for key in x.keys() | (y.keys() - added):
        d = _diff(x.get(key), y.get(key)) if key in x and key in y else math.inf
        part = _part(key)
        parts[part] = max(parts.get(part, 0.0), d)
    worst = max(parts.values(), default=0.0)
    differ = ", ".join(f"{p} {d:.3g}" for p, d in sorted(parts.items()) if d > 0)
    lines.append(f"max |difference| by part: {differ or 'none'}")
    lines.append(f"max |difference| over all {len(x)} numbers: {worst:.3g}")
    if added:
        what = sorted({_part(k) for k in added})
        lines.append(
            f"only in the re-run (not recorded, not compared): {len(added)} numbers in "
            f"{', '.join(what)}"
        )
    return lines, worst


def _who(records: list[dict]) -> str:
    r = records[0]
    m = r["machine"]
    dirty = " (dirty)" if r["git"]["dirty"] is True else ""
    return (f"{r['git']['commit'][:7]}{dirty}, torch {r['versions']['torch']}, {m['cpu_model']} "
            f"{m['torch_cpu_capability']} {m['torch_threads']} threads, {r['time']}")  # fmt: skip


def rerun(probe_dir: Path, scratch_root: Path, execute: Callable[[list[str]], None]) -> int:
    """Re-make the run behind `probe_dir` under `scratch_root` with `execute` (one `pwm` command
    per call) and print how it compares; 0 if every number is identical, else 1."""
    old = load_metrics(probe_dir)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    scratch = scratch_root / f"rerun-{probe_dir.name}-{stamp}"
    commands, out, datasets = plan(old, scratch)  # every check before anything is written
    prov = old["provenance"]
    here = relative(Path.cwd())
    if prov["cwd"] is not None and here != prov["cwd"]:
        raise RerunError(f"run it from the folder it was recorded in ({prov['cwd']}), not {here}")
    print(f"re-run of {probe_dir} into {scratch}")
    print(f"  recorded: trained at {_who(prov['checkpoint']['run'])}; probed at {_who([prov])}")
    scratch.mkdir(parents=True)
    for argv in commands:
        if CKPT in argv:
            made = sorted(scratch.rglob("checkpoints/last.ckpt"))
            if len(made) != 1:
                raise RerunError(f"the re-run fit left {len(made)} last.ckpt under {scratch}")
            argv = [str(made[0]) if a == CKPT else a for a in argv]
        execute(argv)
    new = load_metrics(out)
    if len(prov["checkpoint"]["run"]) > 1:
        print(f"  note: the recorded fit was resumed ({len(prov['checkpoint']['run'])} "
              "invocations); this re-run is one uninterrupted fit")  # fmt: skip
    print(f"  this re-run: trained and probed at {_who([new['provenance']])}")
    for path, (sha, made) in datasets.items():
        now = sha256_file(made / MANIFEST)
        print(f"dataset {path}: manifest {'identical' if now == sha else 'DIFFERS'} "
              f"(recorded {str(sha)[:12]}, re-made {now[:12]})")  # fmt: skip
    same = new["provenance"]["checkpoint"]["weights_sha256"] == prov["checkpoint"]["weights_sha256"]
    print(f"checkpoint weights: {'identical' if same else 'DIFFER'}")
    lines, worst = compare(old, new)
    print("\n".join(lines))
    return 0 if worst == 0 else 1
