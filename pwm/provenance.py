"""Provenance: which code, inputs and machine made a dataset, a training run or a probe.

A committed number is traceable only if its folder says what made it. `collect` gathers that
for one invocation; `write` appends it to `provenance.json` in an output directory, so a resumed
training run or a resumed / split dataset generation adds its invocation and never replaces the
first; `read` returns the recorded invocations. `dataset_record` fingerprints an input dataset:
the sha256 of its manifest (which lists the sha256 of every shard file, so equal manifests mean
equal bytes) and the code that generated it, from the dataset's own `provenance.json`;
`checkpoint_record` does the same for a checkpoint and the training run that made it.

Choices:
- git: the state of the checkout that holds the imported `pwm` package, not of the working
  directory. Besides the commit and a dirty flag it keeps the changed paths and one sha256 of
  `git diff HEAD` and the untracked files, so uncommitted code is named, not only flagged.
  Without git, or outside a checkout (an installed package), every field is "unknown": never
  an error.
- machine: the CPU model, the SIMD flags that select float kernels, the sha256 of the whole flag
  list, torch's CPU capability, its thread counts and the thread environment variables. These
  decide the float32 summation order and so the bits of a trained model.
- paths inside the repository or the working directory are stored relative to it, so a
  committed record names no directory of the machine that made it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from pwm import __version__
from pwm.data.format import MANIFEST, sha256_file, write_json_atomic

FILENAME = "provenance.json"
UNKNOWN = "unknown"
NONE_RECORDED = "no provenance recorded"
# CPU flags that change which float kernels run (and so rounding); the full list is hashed
SIMD = frozenset(
    "sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 "
    "amx_bf16 amx_tile amx_int8 neon asimd sve".split()
)
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
CHANGED_SHOWN = 20  # changed paths listed; the diff hash covers all of them


@functools.cache
def repo_root() -> Path | None:
    """The git checkout that holds the imported `pwm` package, or None (installed package)."""
    root = Path(__file__).resolve().parents[1]
    top = _text(_git(root, "rev-parse", "--show-toplevel"))
    return root if top is not None and Path(top).resolve() == root else None


def _git(root: Path, *args: str) -> bytes | None:
    """Output of `git -C root ARGS`, or None when git is absent or fails."""
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _text(output: bytes | None) -> str | None:
    return None if output is None else output.decode(errors="replace").strip()


def git_state(root: Path | None = None) -> dict:
    """{"commit", "dirty", "changed", "diff_sha256"} of the code's checkout; "unknown" if none."""
    root = root or repo_root()
    commit = _text(_git(root, "rev-parse", "HEAD")) if root else None
    # not stripped: a porcelain line starts with its two status columns, " M path" included
    raw = _git(root, "status", "--porcelain") if commit else None
    status = None if raw is None else raw.decode(errors="replace")
    diff = _git(root, "diff", "HEAD") if commit else None
    if commit is None or status is None or diff is None:
        return {"commit": UNKNOWN, "dirty": UNKNOWN, "changed": [], "diff_sha256": None}
    lines = [line for line in status.splitlines() if line.strip()]
    changed = [line[3:] for line in lines]
    h = hashlib.sha256(diff)
    for line in sorted(lines):  # untracked files are no part of `git diff`: hash their bytes
        path = root / line[3:]
        if line.startswith("??") and path.is_file():
            h.update(line[3:].encode() + b"\0" + path.read_bytes())
    return {
        "commit": commit,
        "dirty": bool(changed),
        "changed": changed[:CHANGED_SHOWN],
        "diff_sha256": h.hexdigest() if changed else None,
    }


def versions() -> dict:
    """Python and the packages whose version can change the numbers."""
    out = {"python": platform.python_version(), "pwm": __version__}
    for name in ("torch", "numpy", "lightning", "scipy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = UNKNOWN
    return out


def _cpuinfo() -> tuple[str, list[str]]:
    """CPU model name and flags from /proc/cpuinfo (Linux); the platform's words otherwise."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    info = {}
    for line in lines:
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())  # the first CPU's
    model = info.get("model name") or platform.processor() or UNKNOWN
    return model, sorted((info.get("flags") or info.get("Features") or "").split())


def machine() -> dict:
    """What decides float rounding here: CPU, SIMD flags, torch threads and kernels, GPU."""
    import torch

    model, flags = _cpuinfo()
    out = {
        "platform": platform.platform(),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpu_simd_flags": [f for f in flags if f in SIMD],
        "cpu_flags_sha256": hashlib.sha256(" ".join(flags).encode()).hexdigest() if flags else None,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
        "cuda": None,
    }
    if torch.cuda.is_available():
        out["cuda"] = {
            "device": torch.cuda.get_device_name(),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    return out


def relative(path: str | Path) -> str:
    """`path` relative to the repository or the working directory if inside one, else as given."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    for base in (repo_root(), Path.cwd()):
        if base is not None:
            try:
                return p.resolve().relative_to(base.resolve()).as_posix() or "."
            except ValueError:
                continue
    return str(path)


def command(argv: list[str]) -> list[str]:
    """argv with the program as `pwm` (any path to pwm's entry point) and local paths relative."""
    prog = Path(argv[0]) if argv else Path("")
    entry = prog.name == "pwm" or prog.as_posix().endswith(("pwm/cli.py", "pwm/__main__.py"))
    out = ["pwm" if entry else relative(prog)]
    for arg in argv[1:]:
        key, eq, value = arg.partition("=")
        if eq and key.startswith("-") and os.path.isabs(value):
            out.append(f"{key}={relative(value)}")
        else:
            out.append(relative(arg) if os.path.isabs(arg) else arg)
    return out


def read(directory: str | Path) -> list[dict] | None:
    """The invocations recorded in DIR/provenance.json, or None when there is none."""
    path = Path(directory) / FILENAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["invocations"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def dataset_record(path: str | Path) -> dict:
    """An input dataset: its path, the sha256 of its manifest and who generated it.

    `generated_by` lists the commit, dirty flag, version and command of each invocation that
    wrote shards into it, or says that none was recorded (a dataset made before provenance).
    """
    manifest = Path(path) / MANIFEST
    made = read(path)
    return {
        "path": relative(path),
        "manifest_sha256": sha256_file(manifest) if manifest.is_file() else None,
        "generated_by": NONE_RECORDED
        if made is None
        else [
            {
                "commit": m["git"]["commit"],
                "dirty": m["git"]["dirty"],
                "pwm_version": m["versions"]["pwm"],
                "argv": m["argv"],
                "time": m["time"],
            }
            for m in made
        ],
    }


def weights_sha256(path: str | Path) -> str:
    """sha256 over a checkpoint's state_dict (names, dtypes, shapes, bytes): equal weights give
    equal hashes wherever the run was made, which the file's own sha256 does not (a Lightning
    checkpoint also holds its callbacks' paths)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def checkpoint_record(path: str | Path) -> dict:
    """A checkpoint: its path, the sha256 of the file and of its weights, and the provenance of
    the run that trained it (read from the run's log directory, `DIR/checkpoints/CKPT`'s `DIR`,
    or from the checkpoint's own folder)."""
    path = Path(path)
    runs = [r for r in (read(path.parent.parent), read(path.parent)) if r is not None]
    return {
        "path": relative(path),
        "sha256": sha256_file(path),
        "weights_sha256": weights_sha256(path),
        "run": runs[0] if runs else NONE_RECORDED,
    }


def collect(argv: list[str] | None = None, inputs: dict[str, str | Path] | None = None) -> dict:
    """One invocation's provenance: when, the command, the code, the versions, the machine, and
    each input dataset (`inputs`: name -> dataset directory) by `dataset_record`."""
    cwd = relative(Path.cwd())
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": command(list(sys.argv if argv is None else argv)),
        "cwd": cwd if not os.path.isabs(cwd) else None,
        "git": git_state(),
        "versions": versions(),
        "machine": machine(),
        "inputs": {name: dataset_record(p) for name, p in (inputs or {}).items()},
    }


def write(directory: str | Path, record: dict) -> Path:
    """Append `record` to DIR/provenance.json (created if absent); return the file's path."""
    path = Path(directory) / FILENAME
    before = read(directory)
    if before is None and path.is_file():
        raise ValueError(f"{path} is not a provenance file; move it away to record this run")
    write_json_atomic(path, {"invocations": [*(before or []), record]})
    return path
