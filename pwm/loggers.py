"""Logging: wandb offline by default, and the resolved config saved inside every run.

`OfflineWandbLogger` is Lightning's WandbLogger with `offline=True` and `save_dir="runs"` as
defaults, so a run needs no account and no network (`wandb sync` uploads it later).
`RunConfigSaver` writes the fully resolved config (every default filled in) as `config.yaml` into
the run's own log directory, and with wandb also into the run's config and files.
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger


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
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(name=name, project=project, save_dir=save_dir, offline=offline)


class RunConfigSaver(SaveConfigCallback):
    """Save the resolved config in the run directory; with wandb, also in the wandb run."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        logger = trainer.logger
        if isinstance(logger, WandbLogger):
            text = self.parser.dump(self.config, skip_none=False)
            logger.experiment.config.update({"pwm_config": text}, allow_val_change=True)
            path = Path(logger.experiment.dir) / "config.yaml"
            path.write_text(text)
