"""The `pwm` command: generate / items (data_gen), fit / validate / test (LightningCLI), probe /
report (pwm.probes), plan (pwm.planning).

`pwm fit -c experiments/base.yaml -c experiments/<diff>.yaml [--section.key=value]` trains; the
options are the typed, docstringed `__init__` arguments of `JEPAModule`, `WorldDataModule` and
Lightning's Trainer (`pwm fit --help`). Values that must not be set twice are linked: the
observation kind and window come from `data`, the image size / state width, the action width and
the world name from the dataset itself. Bad input ends with one line `pwm COMMAND: error: ...`
naming the problem and exit code 2, before anything is written: the model's, data's and
trainer's values are range-checked when they are built, `data.world` (when a config sets it)
must be the dataset's world, and the run directory is checked before the first file goes there
(`_check_run_directory`: no finished run replaced without `--overwrite`, no `--ckpt_path last`
that would silently start from step 0).

Checkpoints are untrusted input: `--ckpt_path` is always read with `torch.load(weights_only=True)`
(`--weights_only false` is refused), so a file that would run code when unpickled is refused, not
run; a checkpoint whose architecture does not fit the data (observation, image size, action
width, window) is refused before training or evaluation starts, naming both sides.

The console: third-party noise is filtered at the source (pwm/console.py); unless
`--trainer.enable_progress_bar=false`, a fit shows pwm/progress.py's FitProgress (a rich bar on a
terminal, a line per tenth of the steps in a log) in place of Lightning's bar and model-summary
table; a fit that would end unvalidated (max_steps below or not a multiple of an integer
val_check_interval) is warned about before it starts.
"""

from __future__ import annotations

import logging
import math
import pickle
import shutil
import sys
from pathlib import Path

import yaml
from jsonargparse import ActionConfigFile
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.model_registry import _is_registry

from pwm import __version__, console
from pwm.checkpoint import CheckpointError, checkpoint_problem, hparams_of, read_checkpoint
from pwm.data.datamodule import WorldDataModule
from pwm.data.format import DatasetError
from pwm.data.manifest import crop_objects_problem
from pwm.loggers import RunConfigSaver
from pwm.module import JEPAModule
from pwm.progress import FitProgress

USAGE = """usage: pwm {generate,items,fit,validate,test,probe,report,plan} ...

  pwm generate {physics,polis,toy} --out DIR ...   simulate and render a dataset
  pwm items {physics,polis} --out DIR ...          violation-of-expectation item sets
  pwm fit -c experiments/base.yaml [-c DIFF.yaml]  train a world model (LightningCLI)
  pwm validate|test -c ... --ckpt_path CKPT        evaluate a checkpoint
  pwm probe --ckpt CKPT --items DIR --out DIR      VoE surprise, baselines, linear probes
  pwm report RUN_DIR ... --out REPORT.md           aggregate probe runs (seeds, models, worlds)
  pwm plan {physics,polis} --ckpt CKPT --out DIR   closed-loop planning with a world model
Run `pwm COMMAND --help` for the options of a command."""


COMMANDS = ("generate", "items", "fit", "validate", "test", "predict", "probe", "report")
_prog = "pwm"  # `pwm COMMAND` once main() knows the command: every error line names it


def _fail(message: str) -> None:
    first = str(message).strip().splitlines()[0] if str(message).strip() else "invalid input"
    print(f"{_prog}: error: {first}", file=sys.stderr)
    raise SystemExit(2)


# hyperparameters linked from the data: a checkpoint fits the data only if they agree
DATA_LINKED = ("observation", "obs_size", "action_dim", "window")


class OneLineErrorParser(LightningArgumentParser):
    """Argument parser whose errors are one line naming the problem (no usage dump)."""

    def error(self, message: str, ex: Exception | None = None) -> None:
        # jsonargparse words a bad value over several lines: key, then what was expected
        text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
        _fail(text if len(text) <= 300 else text[:297] + "...")


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
        parser.link_arguments("data.law", "model.law", apply_on="instantiate")
        parser.link_arguments("data.frame_skip", "model.frame_skip")
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="replace the run directory (the logger's version) if it already holds a run",
        )

    def _set_seed(self) -> None:
        seed = self._get(self.config, "seed_everything")
        if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed < 2**32:
            _fail(f"seed_everything must be in [0, 2^32) (or true: a random seed), got {seed}")
        super()._set_seed()

    def _parse_ckpt_path(self) -> None:
        """Force weights_only loading; read a local --ckpt_path safely and take its hparams.

        Replaces LightningCLI's version (which loads the same way but reports failures as
        tracebacks). The special values `last` / `hpc` and remote paths are resolved and loaded
        by the Trainer, also with weights_only=True.
        """
        self._ckpt = None
        sub = self.config.get("subcommand")
        if not sub:
            return
        cfg = self.config[sub]
        if sub != "fit" and not cfg.get("ckpt_path"):
            _fail(
                f"pwm {sub} needs --ckpt_path CKPT (without one it would score an untrained model)"
            )
        if "weights_only" in cfg:
            if cfg["weights_only"] is False:
                _fail("--weights_only false is refused: pwm checkpoints hold only tensors and data")
            cfg["weights_only"] = True
        path = cfg.get("ckpt_path")
        if not path or path in ("last", "hpc") or _is_registry(path) or "://" in str(path):
            return
        ckpt = read_checkpoint(path)
        hparams = hparams_of(ckpt["hyper_parameters"])
        self._ckpt = (path, hparams, {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()})
        if hparams:
            self.config = self.parser.parse_object({sub: {"model": hparams}}, self.config)

    def _check_checkpoint_fits(self) -> None:
        """Refuse a --ckpt_path whose weights cannot fit the model built for this data."""
        if self._ckpt is None:
            return
        path, saved, shapes = self._ckpt
        now = self.model.hparams
        differ = [k for k in DATA_LINKED if k in saved and saved[k] != now[k]]
        if differ:
            was = ", ".join(f"{k}={saved[k]}" for k in differ)
            new = ", ".join(f"{k}={now[k]}" for k in differ)
            raise CheckpointError(
                f"checkpoint {path} does not match the data: trained with {was}, but "
                f"data.path {self.datamodule.hparams.path} with these data.* settings gives {new}"
            )
        model = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        if model != shapes:
            bad = sorted(set(model) ^ set(shapes)) or [k for k in model if model[k] != shapes[k]]
            raise CheckpointError(f"checkpoint {path} does not fit the model (first: {bad[0]})")

    def _check_crop_objects(self) -> None:
        """A crops model has one token per object of the dataset (the rows of the observation):
        a `model.objects` that splits the rows otherwise can look valid (2 + 3 C^2 either way)."""
        dm, objects = self.datamodule, self.model.hparams.get("objects", 1)
        if dm.hparams.get("observation") == "crops":
            problem = crop_objects_problem(dm.dataset.manifest, objects)
            if problem:
                raise ValueError(f"data.path {dm.hparams.path}: {problem}")

    def instantiate_trainer(self, **kwargs):
        self._check_checkpoint_fits()  # before the Trainer exists: nothing logged, nothing made
        self._check_crop_objects()
        check_trainer(self._get(self.config, "trainer", default={}))
        kwargs |= console_callbacks(self._get(self.config_init, "trainer", default={}))
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (TypeError, ValueError, MisconfigurationException) as e:  # impossible trainer.*
            raise ValueError(f"trainer: {e}") from None
        self._check_world(trainer)
        if rank_zero_only.rank == 0:  # DDP: the other ranks start when rank 0 has made the run
            self._check_run_directory(trainer)
        return trainer

    def _check_world(self, trainer) -> None:
        """A resumed run continues on the world it was trained on."""
        if self._ckpt is None or self.subcommand != "fit":
            return
        path, saved, _ = self._ckpt
        world = self.datamodule.world
        if saved.get("world", world) != world:
            raise CheckpointError(
                f"checkpoint {path} was trained on {saved['world']!r} but data.path "
                f"{self.datamodule.hparams.path} is {world!r}; a resumed run keeps its world"
            )

    def _check_run_directory(self, trainer) -> None:
        """Nothing finished is replaced without --overwrite, and --ckpt_path last must find a
        checkpoint (else Lightning would warn and silently train from step 0).

        The run directory is the logger's version directory (and wherever the checkpoint
        callbacks write). A fit that is not a resume is refused if it already holds a checkpoint
        (a run that got somewhere; the leftovers of one killed before its first checkpoint are
        replaced), a validate/test if its log directory holds anything (its metrics.csv and
        config.yaml would be replaced) or the checkpoint it evaluates, unless --overwrite, which
        empties it first (never the checkpoint being evaluated: that is refused outright).
        """
        sub, cfg = self.subcommand, self.config[self.subcommand]
        ckpt, overwrite = cfg.get("ckpt_path"), bool(cfg.get("overwrite"))
        checkpointers = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
        logger = trainer.logger
        versioned = isinstance(logger, CSVLogger | TensorBoardLogger)
        # Lightning's own resolution of where each callback writes (a private method: the rule
        # is Lightning's, so it is asked rather than copied)
        saves = [Path(c._ModelCheckpoint__resolve_ckpt_dir(trainer)) for c in checkpointers]
        dirs = ([Path(logger.log_dir)] if versioned else []) + saves
        if ckpt == "last":
            found = set().union(*(c._find_last_checkpoints(trainer) for c in checkpointers))
            found = sorted(f for f in found if Path(f).is_file())
            if not found:
                where = ", ".join(sorted({str(d) for d in saves})) or "the run (no checkpointer)"
                hint = ""
                if versioned:
                    root = Path(logger.root_dir)
                    runs = sorted(d.name for d in root.glob("version_*")) if root.is_dir() else []
                    hint = (f"; name the run to resume with --trainer.logger.init_args.version "
                            f"({root} holds {', '.join(runs) or 'no run'})")  # fmt: skip
                raise ValueError(f"--ckpt_path last: no last checkpoint in {where}{hint}")
            ckpt = found[0]
        if sub == "fit" and ckpt:
            return  # a resume continues its own run directory
        if sub != "fit":  # an evaluation writes logs, no checkpoints
            dirs = dirs[:versioned]
            inside = [d for d in dirs if Path(ckpt).resolve().is_relative_to(d.resolve())]
            if inside:
                raise ValueError(
                    f"pwm {sub} would log into {inside[0]}, the run whose checkpoint it "
                    "evaluates; log to another --trainer.logger.init_args.version"
                )
        pattern = "*.ckpt" if sub == "fit" else "*"
        full = [d for d in dict.fromkeys(dirs) if d.is_dir() and any(d.rglob(pattern))]
        if full and not overwrite:
            resume = "resume it with --ckpt_path last, " if sub == "fit" else ""
            raise ValueError(
                f"{full[0]} already holds a run; {resume}log to another "
                "--trainer.logger.init_args.version, or pass --overwrite to replace it"
            )
        for d in full:  # --overwrite (a checkpoint directory may lie inside the log directory)
            if d.exists():
                shutil.rmtree(d)

    def before_fit(self) -> None:
        if warning := short_fit_warning(self.trainer.max_steps, self.trainer.val_check_interval):
            print(f"pwm fit: warning: {warning}", file=sys.stderr)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except (pickle.UnpicklingError, EOFError, RuntimeError) as e:
            path = self.config[subcommand].get("ckpt_path")
            if path is None:
                raise
            problem = checkpoint_problem(e)
            if problem is None and str(e).startswith("Error(s) in loading state_dict"):
                problem = "does not fit the model (" + str(e).splitlines()[1].strip() + ")"
            if problem is None:
                raise
            raise CheckpointError(f"checkpoint --ckpt_path {path} {problem}") from None


def console_callbacks(trainer: dict) -> dict:
    """Trainer arguments for pwm's console: unless the progress bar is turned off, FitProgress
    replaces Lightning's bar and, unless asked for, its model-summary table (a one-line summary
    instead). Returns the `callbacks` (the configured ones plus the bar) and that setting."""
    if trainer.get("enable_progress_bar") is False:
        return {}
    given = trainer.get("callbacks") or []
    out = {"callbacks": [*(given if isinstance(given, list) else [given]), FitProgress()]}
    if trainer.get("enable_model_summary") is None:
        out["enable_model_summary"] = False
    return out


def short_fit_warning(max_steps: int, val_check_interval) -> str | None:
    """Why a fit of `max_steps` would end unvalidated, or None. Validation (val/loss, the best
    and last checkpoints of base.yaml) runs every `val_check_interval` steps, so a run shorter
    than one interval has none, and one that is not a multiple ends with unvalidated steps."""
    if not isinstance(val_check_interval, int) or max_steps is None or max_steps < 1:
        return None
    if max_steps < val_check_interval:
        return (f"max_steps {max_steps} < val_check_interval {val_check_interval}: no "
                "validation will run, so no val/loss and no checkpoint (base.yaml's are written "
                f"at validation); set --trainer.val_check_interval={max_steps}")  # fmt: skip
    if max_steps % val_check_interval:
        done = max_steps - max_steps % val_check_interval
        return (f"max_steps {max_steps} is not a multiple of val_check_interval "
                f"{val_check_interval}: the last validation (and last.ckpt) is at step "
                f"{done}")  # fmt: skip
    return None


def check_trainer(cfg) -> None:
    """Refuse trainer.* values Lightning accepts but that make no run (or a silent non-run)."""
    get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: d)
    steps = get("max_steps")
    if isinstance(steps, int) and (steps == 0 or steps < -1):
        raise ValueError(f"trainer.max_steps must be >= 1 (or -1: no step limit), got {steps}")
    for key in ("accumulate_grad_batches", "log_every_n_steps"):
        value = get(key)
        if isinstance(value, int) and value < 1:
            raise ValueError(f"trainer.{key} must be >= 1, got {value}")
    value = get("val_check_interval")
    if isinstance(value, int) and not isinstance(value, bool) and value < 1:
        raise ValueError(f"trainer.val_check_interval must be >= 1 (steps), got {value}")
    if isinstance(value, float) and not 0 < value <= 1:
        raise ValueError(f"trainer.val_check_interval as a fraction must be in (0, 1], got {value}")
    clip = get("gradient_clip_val")
    if isinstance(clip, int | float) and not (math.isfinite(clip) and clip >= 0):
        raise ValueError(f"trainer.gradient_clip_val must be a finite number >= 0, got {clip}")


def check_config_files(argv: list[str]) -> None:
    """Name the file when a `-c` config is not valid YAML (the parser's error does not)."""
    for flag, value in zip(argv, [*argv[1:], None], strict=True):
        if flag.startswith("--config="):
            flag, value = "-c", flag.split("=", 1)[1]
        if flag in ("-c", "--config") and value and Path(value).is_file():
            try:
                doc = yaml.safe_load(Path(value).read_text())
            except (yaml.YAMLError, UnicodeDecodeError) as e:
                mark = getattr(e, "problem_mark", None)
                where = f" at line {mark.line + 1}" if mark else ""
                _fail(f"config {value} is not valid YAML{where}: {getattr(e, 'problem', e)}")
            if doc is not None and not isinstance(doc, dict):
                _fail(f"config {value} must be a mapping of sections (trainer, model, data)")


def train_cli(argv: list[str]) -> None:
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    check_config_files(argv)
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
    global _prog
    argv = sys.argv[1:] if argv is None else list(argv)
    _prog = f"pwm {argv[0]}" if argv and argv[0] in COMMANDS else "pwm"
    console.quiet()
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
        if argv[0] == "plan":
            from pwm.planning.cli import main as plan_main

            return plan_main(argv[1:])
        _fail(f"unknown command {argv[0]!r}; expected one of {USAGE.split()[2]}")
    except (DatasetError, ValueError, OSError, FloatingPointError) as e:
        _fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
