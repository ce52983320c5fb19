"""`pwm generate WORLD ...` and `pwm items WORLD ...` (DESIGN 6).

Each world is a module registered in WORLDS that provides:

- `add_arguments(parser, command)`: its own options (`command` is "generate" or "items");
- `run(args, command)`: do the work; `args.out` is already prepared (empty or absent);
- optionally `COMMANDS`, the commands it supports (default both);
- optionally `validate(args, command)`: raise ValueError on bad options, called before `--out`
  is touched, so bad input fails with one line and no side effect.

A world whose module does not exist (yet) is left out. Every usage error is one line on stderr
and exit code 2.

The options every world shares (output, size, seed, workers, sharding) are added here once.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from pwm.data.format import DatasetError, prepare_output_dir

WORLDS = {"toy": "data_gen.toy", "physics": "data_gen.physics_cli", "polis": "data_gen.polis_cli"}


class UsageError(Exception):
    """A command-line error, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors raise UsageError (one line) instead of printing usage and exiting."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: error: {message}")


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
    parser = _Parser(prog=f"pwm {command}", description=__doc__.splitlines()[0])
    worlds = _available()
    sub = parser.add_subparsers(dest="world", required=True, metavar="{" + ",".join(worlds) + "}")
    for world, name in worlds.items():
        module = importlib.import_module(name)
        if command not in getattr(module, "COMMANDS", ("generate", "items")):
            continue
        p = sub.add_parser(world, help=f"the {world} world")
        p.add_argument("--out", required=True, help="output directory (must be empty or absent)")
        p.add_argument("--seed", type=int, default=0, help="root seed; same seed, same bytes")
        p.add_argument("--image-size", type=_positive("--image-size", 16), default=64)
        p.add_argument("--workers", type=_positive("--workers"), default=1)
        p.add_argument("--shard", type=_positive("--shard", 0), default=0, help="this job's index")
        p.add_argument(
            "--num-shards", type=_positive("--num-shards"), default=1, help="jobs in all"
        )
        p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
        if command == "generate":
            p.add_argument("--episodes", type=_positive("--episodes"), default=256)
            p.add_argument("--frames", type=_positive("--frames"), default=64)
        else:
            p.add_argument(
                "--items",
                type=_positive("--items"),
                default=1000,
                help="items (pairs) per condition",
            )
        module.add_arguments(p, command)
    return parser


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    try:
        args = build_parser(command).parse_args(rest)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        if args.shard >= args.num_shards:
            raise DatasetError(
                f"--shard must be < --num-shards, got {args.shard} of {args.num_shards}"
            )
        module = importlib.import_module(WORLDS[args.world])
        if hasattr(module, "validate"):
            module.validate(args, command)
        local = {"out", "workers", "shard", "num_shards", "overwrite"}
        config = {"command": command, **{k: v for k, v in vars(args).items() if k not in local}}
        args.out = prepare_output_dir(args.out, args.overwrite, config)
        module.run(args, command)
    except (DatasetError, ValueError) as e:
        print(f"pwm {command}: error: {e}", file=sys.stderr)
        return 2
    return 0
