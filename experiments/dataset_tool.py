"""The command line shared by the experiments/ tools that read one Polis training set and print a
markdown report (avoidance.py, visible_history.py): `DATASET [--shards N] [--json OUT]` plus the
tool's own options. Bad input (--shards < 1, a --json that is not a file in an existing
directory, or what the tool's analysis refuses) is one line on stderr, exit 2, nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from pwm.data.format import DatasetError
from pwm.probes.cli import jsonable


class ToolError(ValueError):
    """Bad input: one line for the user."""


def parser(doc: str) -> argparse.ArgumentParser:
    """The shared arguments; the tool adds its own before calling `main`."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("data", type=Path, help="a Polis dataset (pwm generate polis)")
    p.add_argument("--shards", type=int, help="use only the first N shards (default all)")
    p.add_argument("--json", type=Path, help="also write every number as JSON")
    return p


def main(
    script: str,
    p: argparse.ArgumentParser,
    argv: list[str] | None,
    analyse: Callable[[argparse.Namespace], dict],
    report: Callable[[dict, str], list[str]],
    errors: tuple[type[Exception], ...] = (),
) -> None:
    """Parse, check, run `analyse(args)`, print `report(result, command)`, write --json."""
    args = p.parse_args(argv)
    args_text = sys.argv[1:] if argv is None else argv
    try:
        if args.shards is not None and args.shards < 1:
            raise ToolError(f"--shards must be >= 1, got {args.shards}")
        if args.json and (args.json.is_dir() or not args.json.absolute().parent.is_dir()):
            raise ToolError(f"--json {args.json}: not a file in an existing directory")
        res = analyse(args)
    except (ToolError, DatasetError, *errors) as exc:
        print(f"{script}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    command = " ".join([f"python experiments/{script}", *map(str, args_text)])
    print("\n".join(report(res, command)))
    if args.json:
        args.json.write_text(json.dumps(jsonable({"command": command, **res}), indent=1) + "\n")
