"""`pwm generate WORLD ...` and `pwm items WORLD ...` (DESIGN 6).

Each world is a module registered in WORLDS that provides:

- `add_arguments(parser, command)`: its own options (`command` is "generate" or "items");
- `run(args, command)`: do the work; `args.out` is already prepared (empty or absent);
- optionally `COMMANDS`, the commands it supports (default both);
- optionally `validate(args, command)`: raise ValueError on bad options, called before `--out`
  is touched, so bad input fails with one line and no side effect;
- optionally `size(args, command)`: (episodes, frames per episode) the command writes (default
  --episodes, --frames), so that a dataset too big for the disk, or a shard too big for the
  memory, is refused before anything is written.

A world whose module does not exist (yet) is left out. Every usage error is one line on stderr
and exit code 2.

The options every world shares (output, size, seed, workers, sharding) are added here once.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

from pwm.console import DefaultsHelpFormatter
from pwm.data.format import DatasetError, prepare_output_dir

WORLDS = {"toy": "data_gen.toy", "physics": "data_gen.physics_cli", "polis": "data_gen.polis_cli"}
WORLD_HELP = {
    "toy": "two discs and a pushed ego, for smoke tests and the debug preset",
    "physics": "elastic discs and a pushed ego: the physical baseline (DESIGN 3.2)",
    "polis": "agents in repeated prisoner's dilemmas: the social world (DESIGN 3.3)",
}
DESCRIPTION = {
    "generate": "Simulate and render a training dataset of one world (DESIGN 3.4).",
    "items": "Make a violation-of-expectation item set of one world (DESIGN 4.2).",
}


class UsageError(Exception):
    """A command-line error, reported as one line."""


WORKERS_PER_CPU = 4  # --workers beyond this many per CPU only add memory
FRAME_OVERHEAD = 512  # bytes per frame besides the pixels (state, actions, cues), generously


class _Parser(argparse.ArgumentParser):
    """argparse, but errors raise UsageError (one line) instead of printing usage and exiting."""

    def error(self, message: str):
        # "argument --seed: --seed must be >= 0": the flag once is enough
        raise UsageError(re.sub(r"^argument (\S+): \1 ", r"\1 ", message))


def _available() -> dict[str, str]:
    return {w: m for w, m in WORLDS.items() if importlib.util.find_spec(m) is not None}


def _positive(name: str, minimum: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {value}")
        return value

    return parse


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser of `pwm COMMAND`; only the worlds that support COMMAND are offered."""
    parser = _Parser(prog=f"pwm {command}", description=DESCRIPTION[command])
    worlds = {}
    for world, name in _available().items():
        module = importlib.import_module(name)
        if command in getattr(module, "COMMANDS", ("generate", "items")):
            worlds[world] = module
    sub = parser.add_subparsers(dest="world", required=True, metavar="{" + ",".join(worlds) + "}")
    for world, module in worlds.items():
        p = sub.add_parser(
            world,
            help=WORLD_HELP.get(world, f"the {world} world"),
            description=f"pwm {command} {world}: {WORLD_HELP.get(world, '')}",
            formatter_class=DefaultsHelpFormatter,
        )
        p.add_argument("--out", required=True, metavar="DIR",
                       help="output directory (must be empty or absent)")  # fmt: skip
        p.add_argument("--seed", type=_positive("--seed", 0), default=0,
                       help="root seed (>= 0); same seed, same bytes")  # fmt: skip
        p.add_argument("--image-size", type=_positive("--image-size", 16), default=64,
                       metavar="PX", help="side of the square frames, pixels (>= 16)")  # fmt: skip
        p.add_argument("--workers", type=_positive("--workers"), default=1, metavar="N",
                       help="worker processes (the bytes do not depend on it)")  # fmt: skip
        p.add_argument("--shard", type=_positive("--shard", 0), default=0, metavar="I",
                       help="this job's index among --num-shards jobs")  # fmt: skip
        p.add_argument("--num-shards", type=_positive("--num-shards"), default=1, metavar="N",
                       help="jobs the generation is split into")  # fmt: skip
        p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
        if command == "generate":
            p.add_argument("--episodes", type=_positive("--episodes"), default=256, metavar="N",
                           help="episodes to simulate")  # fmt: skip
            p.add_argument("--frames", type=_positive("--frames", 2), default=64, metavar="T",
                           help="frames per episode (>= 2: a window needs two)")  # fmt: skip
        else:
            p.add_argument("--items", type=_positive("--items"), default=1000, metavar="N",
                           help="items per condition (item groups: one item of every "
                           "condition each)")  # fmt: skip
        module.add_arguments(p, command)
    return parser


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def check_size(args: argparse.Namespace, episodes: int, frames: int) -> None:
    """Refuse a dataset that cannot fit: its frames on the disk of --out, or one shard per
    worker in this machine's memory (the pixels, uint8, side^2 x 3 per frame, and with --crops
    the crops, float32, objects x (2 + 3 crops^2) per frame)."""
    per_frame = args.image_size**2 * 3 + FRAME_OVERHEAD
    crop = getattr(args, "crops", 0) or 0  # the `crops` observation: float32 per object
    per_frame += (
        4 * (getattr(args, "agents", 0) or getattr(args, "num_objects", 0)) * (2 + 3 * crop**2)
    )
    total = episodes * frames * per_frame / args.num_shards  # this job's part
    out = Path(args.out)
    if out.is_dir():  # what a resumed run has written, or --overwrite will free, is not needed
        total -= sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    where = out.absolute()
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    what = f"{episodes} episodes x {frames} frames at {args.image_size} px"
    if total > free:
        raise DatasetError(f"{what} is about {_gb(total)}, more than the {_gb(free)} free on "
                           f"{where}")  # fmt: skip
    per_shard = min(episodes, getattr(args, "episodes_per_shard", 64))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    need = per_shard * frames * per_frame * min(args.workers, episodes)
    if need > memory:
        raise DatasetError(
            f"{what}: {min(args.workers, episodes)} worker(s) of {per_shard}-episode shards "
            f"need about {_gb(need)} of memory, more than this machine's {_gb(memory)}"
        )


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    try:
        args = build_parser(command).parse_args(rest)
    except UsageError as e:
        print(f"pwm {command}: error: {e}", file=sys.stderr)
        return 2
    try:
        if args.shard >= args.num_shards:
            raise DatasetError(
                f"--shard must be < --num-shards, got {args.shard} of {args.num_shards}"
            )
        most = WORKERS_PER_CPU * (os.cpu_count() or 1)
        if args.workers > most:
            raise DatasetError(f"--workers must be <= {most} ({WORKERS_PER_CPU} per CPU here), "
                               f"got {args.workers}")  # fmt: skip
        module = importlib.import_module(WORLDS[args.world])
        if hasattr(module, "validate"):
            module.validate(args, command)
        size = getattr(module, "size", lambda a, c: (a.episodes, a.frames))
        check_size(args, *size(args, command))
        local = {"out", "workers", "shard", "num_shards", "overwrite"}
        config = {"command": command, **{k: v for k, v in vars(args).items() if k not in local}}
        args.out = prepare_output_dir(args.out, args.overwrite, config)
        module.run(args, command)
    except (DatasetError, ValueError) as e:
        print(f"pwm {command}: error: {e}", file=sys.stderr)
        return 2
    return 0
