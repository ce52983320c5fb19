"""The `pwm` command: generate / items (data_gen), fit / validate / test (LightningCLI), probe /
report (pwm.probes).

`pwm fit -c experiments/base.yaml -c experiments/<diff>.yaml [--section.key=value]` trains; the
options are the typed, docstringed `__init__` arguments of `JEPAModule`, `WorldDataModule` and
Lightning's Trainer (`pwm fit --help`). Values that must not be set twice are linked: the
observation kind and window come from `data`, the image size / state width, the action width and
the world name from the dataset itself. Bad input ends with one line naming the problem and exit
code 2.
"""

from __future__ import annotations

import logging
import sys

from jsonargparse import ActionConfigFile
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from pwm import __version__
from pwm.data.datamodule import WorldDataModule
from pwm.data.format import DatasetError
from pwm.loggers import RunConfigSaver
from pwm.module import JEPAModule

USAGE = """usage: pwm {generate,items,fit,validate,test,probe,report} ...

  pwm generate {physics,polis,toy} --out DIR ...   simulate and render a dataset
  pwm items {physics,polis} --out DIR ...          violation-of-expectation item sets
  pwm fit -c experiments/base.yaml [-c DIFF.yaml]  train a world model (LightningCLI)
  pwm validate|test -c ... --ckpt_path CKPT        evaluate a checkpoint
  pwm probe --ckpt CKPT --items DIR --out DIR      VoE surprise, baselines, linear probes
  pwm report RUN_DIR ... --out REPORT.md           aggregate probe runs (seeds, models, worlds)
Run `pwm COMMAND --help` for the options of a command."""


def _fail(message: str) -> None:
    first = str(message).strip().splitlines()[0] if str(message).strip() else "invalid input"
    print(f"pwm: error: {first}", file=sys.stderr)
    raise SystemExit(2)


class OneLineErrorParser(LightningArgumentParser):
    """Argument parser whose errors are one line naming the problem (no usage dump)."""

    def error(self, message: str, ex: Exception | None = None) -> None:
        _fail(message)


class PWMCLI(LightningCLI):
    def init_parser(self, **kwargs) -> LightningArgumentParser:
        kwargs.setdefault("dump_header", [f"pwm=={__version__}"])
        parser = OneLineErrorParser(**kwargs)
        parser.add_argument("-c", "--config", action=ActionConfigFile, help="YAML config file(s).")
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.observation", "model.observation")
        parser.link_arguments("data.window", "model.window")
        parser.link_arguments("data.obs_size", "model.obs_size", apply_on="instantiate")
        parser.link_arguments("data.action_dim", "model.action_dim", apply_on="instantiate")
        parser.link_arguments("data.world", "model.world", apply_on="instantiate")


def train_cli(argv: list[str]) -> None:
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    sys.argv = [sys.argv[0], *argv]  # LightningCLI reads its arguments from sys.argv
    PWMCLI(
        JEPAModule,
        WorldDataModule,
        save_config_callback=RunConfigSaver,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_env": False},
        auto_configure_optimizers=False,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    try:
        if argv[0] in ("generate", "items"):
            from data_gen.cli import main as data_main

            return data_main(argv)
        if argv[0] in ("fit", "validate", "test", "predict"):
            train_cli(argv)
            return 0
        if argv[0] in ("probe", "report"):
            from pwm.probes.cli import main as probe_main
            from pwm.probes.report import main as report_main

            return (probe_main if argv[0] == "probe" else report_main)(argv[1:])
        _fail(f"unknown command {argv[0]!r}; expected one of {USAGE.split()[2]}")
    except (DatasetError, ValueError, FileNotFoundError, FloatingPointError) as e:
        _fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
