"""Logging: CSV that survives a resume, wandb offline by default, the resolved config in each run.

`ResumableCSVLogger` is Lightning's CSVLogger except that resuming into the same run directory
(`--ckpt_path last` with the same version) keeps the metrics logged before the interruption.

`OfflineWandbLogger` is Lightning's WandbLogger with `offline=True` and `save_dir="runs"` as
defaults, so a run needs no account and no network (`wandb sync` uploads it later).
`RunConfigSaver` writes the fully resolved config (every default filled in) as `config.yaml` into
the run's own log directory, and with wandb also into the run's config and files. Beside it,
`provenance.json` records the invocation (commit, command, the training set's manifest sha256,
versions, machine and the resolved config: pwm/provenance.py); a resumed run appends its own.
"""

from __future__ import annotations

import csv
from pathlib import Path

import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from pwm import provenance


class OfflineWandbLogger(WandbLogger):
    """WandbLogger that runs offline unless told otherwise.

    Args:
        name: run name.
        project: wandb project.
        save_dir: where the offline run directory is written.
        offline: keep everything local (default); set false to stream to a wandb server.
    """

    def __init__(
        self,
        name: str | None = None,
        project: str = "pwm",
        save_dir: str = "runs",
        offline: bool = True,
    ):
        super().__init__(name=name, project=project, save_dir=save_dir, offline=offline)

    @property
    def experiment(self):
        # the directory is made when the run starts, not when the config is read: a command
        # refused after parsing writes nothing
        Path(self.save_dir).mkdir(parents=True, exist_ok=True)
        return super().experiment


class RunConfigSaver(SaveConfigCallback):
    """Save the resolved config and the run's provenance in the run directory; with wandb, the
    config also in the wandb run."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        # `trainer.log_dir` is a collective (a broadcast): read it here, where every rank runs,
        # not in `save_config`, which runs on rank zero only (a DDP run would hang there)
        self._log_dir = trainer.log_dir
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        """Called once per run, on rank zero only."""
        text = self.parser.dump(self.config, skip_none=False)
        if self._log_dir is not None:
            data = getattr(trainer.datamodule, "hparams", {}).get("path")
            record = provenance.collect(inputs={"data": data} if data else {})
            ckpt = self.config.get("ckpt_path")  # `last`, a path, or None (a fresh run)
            record["run"] = {
                "stage": stage,
                "log_dir": provenance.relative(self._log_dir),
                "ckpt_path": provenance.relative(ckpt) if ckpt else None,
                "config": yaml.safe_load(text),
            }
            Path(self._log_dir).mkdir(parents=True, exist_ok=True)
            provenance.write(self._log_dir, record)
        logger = trainer.logger
        if isinstance(logger, WandbLogger):
            logger.experiment.config.update({"pwm_config": text}, allow_val_change=True)
            path = Path(logger.experiment.dir) / "config.yaml"
            path.write_text(text)


class _AppendingWriter(ExperimentWriter):
    """Keeps an existing metrics.csv (a resumed run) instead of deleting it.

    On the first save, rows at or after the first step being written are dropped: they were
    logged after the checkpoint the run resumed from, and the resumed run logs them again.
    """

    def _check_log_dir_exists(self) -> None:
        self._resumed = self._fs.isfile(self.metrics_file_path)

    def save(self) -> None:
        if getattr(self, "_resumed", False) and self.metrics:
            first = min(m.get("step", 0) for m in self.metrics)
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(float(r["step"])) < first]
            self.metrics_keys = sorted(set(self.metrics_keys).union(*rows))
            with self._fs.open(self.metrics_file_path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(rows)
            self._resumed = False
        super().save()


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, but resuming into an existing run directory keeps its metrics.

    Args:
        save_dir: root directory of the runs.
        name: experiment name (a sub-directory).
        version: run version; default the next free one. Resume with the same version.
    """

    def __init__(self, save_dir: str = "runs", name: str = "default", version: int | None = None):
        super().__init__(save_dir=save_dir, name=name, version=version)

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
