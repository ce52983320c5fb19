"""Data: the on-disk dataset format (shared with data_gen) and the window DataModule."""

from pwm.data.datamodule import WindowDataset, WorldDataModule, split_episodes
from pwm.data.format import Dataset, DatasetError, open_dataset

__all__ = [
    "Dataset",
    "DatasetError",
    "WindowDataset",
    "WorldDataModule",
    "open_dataset",
    "split_episodes",
]
