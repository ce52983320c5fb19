"""Windows of frames from a dataset on disk, and the LightningDataModule over them.

A sample is a window of `window` time steps of one episode (window >= H + 1, where H is the
predictor's history): the observation (`pixels` uint8 (L, H, W, 3), or `state` or `crops` float32
(L, F)) and the actions (L, A * S). A time step is `frame_skip` = S frames (LeWM's frame skip,
DESIGN 5.2): step i of a window starting at frame f shows frame f + S i, and its action is the block
of the S per-frame actions a_{f+Si} .. a_{f+Si+S-1}, concatenated (what happens between step i and
step i + 1; zero-padded past the episode's end, where only the window's last step, whose action no
prediction uses, can reach). With S = 1 this is a window of consecutive frames. Windows start at
frames `offset`, `offset + stride`, ...: in Polis, `frame_skip` = `stride` = round_len and `offset`
0 give one step per exchange round (every step an exchange frame, or frame 0). Arrays stay
memory-mapped and are opened lazily in each DataLoader worker (a memmap must not be pickled into the
workers). The train/val split is by episode, from a seeded permutation: an episode is never split
between train and val. Training batches come from `StepBatchSampler`: a pure function of (seed,
global step), so a resumed run sees exactly the batches of an uninterrupted one; set
`trainer.use_distributed_sampler: false` (base.yaml does) because the sampler already splits each
global batch across DDP ranks.

Curricula (DESIGN 5.4): on a Polis dataset, whose per-episode `hobbesian` array marks the episodes
drawn from the hobbesian population, `hobbesian_fraction` (and optionally `hobbesian_final`,
`ramp_start`, `ramp_steps`) sets P(a training window comes from a hobbesian training episode) as a
function of the optimizer step, and training batches come from `MixtureBatchSampler` (see
sampler.py for the draw). Unset, windows are drawn uniformly as stored (StepBatchSampler, the same
batches as without the option). Validation always uses every val episode. The datamodule does not
log the fraction (logging is the LightningModule's); `hobbesian_p(step)` gives it.

Event weights (issue 27, the consequence of a betrayal): on a Polis dataset, `event_weight` = a > 0
adds to every training sample a `weight` (L, n) per step and agent: 1 + a where the agent suffered
a defection (its exchange partner executed D on it) at one of the `event_steps` steps of the
window before that step, else 1. The module weights its prediction loss with it (module.py). The
weight is a function of the window's frames before the predicted step, which the predictor sees
when event_steps <= its history (the law presets: 3 <= 8), so for a fixed encoder it re-weights
which contexts the loss emphasises and leaves the loss's minimiser, the conditional expectation of
the next embedding given the context, unchanged (up to the O(1 / batch) of normalising by the
batch's total weight); what it changes is how much of the predictor's capacity and gradient the
rare contexts (an agent just defected on: will it retaliate, will it move away) get, and, through
the context, what the encoder is pushed to keep. The flags read the state's exchange frames: in
Polis one step per round (frame_skip = stride = round_len, offset 0), where every step is an
exchange frame; with other steps `event_steps` counts steps, not rounds. Validation windows carry
no weight (val losses stay comparable across runs); unset (0), samples are as before, byte for
byte.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from data_gen.agents import D as DEFECT
from pwm.data.format import DatasetError, open_dataset
from pwm.data.sampler import FractionSchedule, MixtureBatchSampler, StepBatchSampler
from pwm.workers import dataloader_worker_init


def window_starts(
    frames: int, window: int, stride: int, frame_skip: int = 1, offset: int = 0
) -> np.ndarray:
    """First frames of the windows of `window` steps of `frame_skip` frames in an episode of
    `frames` frames, from frame `offset` on, every `stride` frames."""
    return np.arange(offset, frames - (window - 1) * frame_skip, stride)


def action_blocks(actions: np.ndarray, frames: np.ndarray, frame_skip: int) -> np.ndarray:
    """actions (T, A) of one episode, step frames (L,) -> (L, A * S): per step the S actions
    from its frame on, concatenated, zero-padded past the episode's end."""
    T, A = actions.shape
    idx = frames[:, None] + np.arange(frame_skip)  # (L, S)
    out = np.where((idx < T)[..., None], actions[np.minimum(idx, T - 1)], 0)  # (L, S, A)
    return out.reshape(len(frames), frame_skip * A).astype(np.float32)


def suffered_defection(partner: np.ndarray, executed: np.ndarray) -> np.ndarray:
    """partner (T, n) (the partner's index, -1 without an exchange) and executed (T, n) action
    codes of one episode -> (T, n) bool: agent i's exchange partner executed D on it at frame t."""
    paired = partner >= 0
    theirs = np.take_along_axis(executed, np.where(paired, partner, 0).astype(np.int64), axis=1)
    return paired & (theirs == DEFECT)


def event_weights(suffered: np.ndarray, steps: int, weight: float) -> np.ndarray:
    """suffered (L, n) at a window's L steps -> (L, n) float32: 1 + weight where the agent
    suffered a defection at one of the `steps` steps of the window before each step, else 1
    (steps before the window do not count: the predictor does not see them)."""
    before = np.zeros_like(suffered)  # (L, n): a defection at one of the `steps` steps before
    for back in range(1, steps + 1):
        before[back:] |= suffered[:-back]
    return (1.0 + weight * before).astype(np.float32)


class WindowDataset(Dataset):
    """All windows of `window` steps of `frame_skip` frames (starting every `stride` frames from
    `offset`) of the chosen episodes; with `event_weight` > 0 (a Polis dataset) each sample also
    has `weight` (L, n), see `event_weights`."""

    def __init__(
        self,
        root: Path,
        observation: str,
        episodes: np.ndarray,
        window: int,
        stride: int = 1,
        frame_skip: int = 1,
        offset: int = 0,
        event_weight: float = 0.0,
        event_steps: int = 3,
    ):
        self.root, self.observation, self.window = Path(root), observation, window
        self.frame_skip = frame_skip
        self.event_weight, self.event_steps = event_weight, event_steps
        ds = open_dataset(root, verify=False)
        T = ds.shape(observation)[0]
        span = (window - 1) * frame_skip + 1
        if offset + span > T:
            raise DatasetError(
                f"a window of {window} steps of {frame_skip} frames from frame {offset} spans "
                f"{offset + span} frames, more than the episode length {T}"
            )
        self.locations = [ds.locate(int(e)) for e in episodes]
        self.starts = window_starts(T, window, stride, frame_skip, offset)
        self._obs = self._actions = self._partner = self._executed = None

    def __len__(self) -> int:
        return len(self.locations) * len(self.starts)

    def _open(self):
        ds = open_dataset(self.root, verify=False)
        self._obs, self._actions = ds.shards(self.observation), ds.shards("actions")
        if self.event_weight > 0:
            self._partner, self._executed = ds.shards("partner"), ds.shards("executed")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self._obs is None:
            self._open()
        episode, start = divmod(index, len(self.starts))
        shard, local = self.locations[episode]
        S, first = self.frame_skip, self.starts[start]
        if S == 1:
            sl = slice(first, first + self.window)
            obs = np.array(self._obs[shard][local, sl])  # (L, *obs_shape)
            actions = np.array(self._actions[shard][local, sl], dtype=np.float32)  # (L, A)
        else:
            frames = first + S * np.arange(self.window)  # (L,) the steps' frames
            obs = np.array(self._obs[shard][local, frames[0] : frames[-1] + 1 : S])
            acts = np.array(self._actions[shard][local, first : frames[-1] + S], np.float32)
            actions = action_blocks(acts, frames - first, S)  # (L, A * S)
        sample = {"obs": torch.from_numpy(obs), "actions": torch.from_numpy(actions)}
        if self.event_weight > 0:  # the window's own step frames, as the predictor sees them
            steps = slice(first, first + S * (self.window - 1) + 1, S)
            part, done = self._partner[shard][local, steps], self._executed[shard][local, steps]
            suffered = suffered_defection(np.asarray(part), np.asarray(done))  # (L, n)
            weight = event_weights(suffered, self.event_steps, self.event_weight)
            sample["weight"] = torch.from_numpy(weight)
        return sample


def split_episodes(
    num_episodes: int, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded episode-level split: (train episode ids, val episode ids), disjoint, sorted."""
    perm = np.random.default_rng(seed).permutation(num_episodes)
    n_val = int(round(val_fraction * num_episodes)) if val_fraction > 0 else 0
    if val_fraction > 0:
        n_val = min(max(n_val, 1), num_episodes - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class WorldDataModule(L.LightningDataModule):
    """Windows from a `pwm generate` dataset, split by episode into train and val.

    Args:
        path: dataset directory written by `pwm generate` (a training dataset: not an item set
            or a counterfactual set).
        observation: what the encoder sees: `pixels` (ViT), `state` (MLP) or `crops` (per agent
            its position and the pixels around it: `pwm generate polis --crops PX`).
        window: time steps per training sample (the predictor needs window >= history + 1).
        stride: frames between the starts of consecutive windows of an episode.
        frame_skip: frames per time step (LeWM's frame skip); the action of a step is the block
            of its frame_skip per-frame actions. In Polis, round_len (with stride = round_len,
            offset 0) makes one step per exchange round.
        offset: the first frame of an episode's first window.
        batch_size: windows per batch (per device).
        val_fraction: fraction of episodes held out for validation.
        split_seed: seed of the episode permutation behind the split.
        num_workers: DataLoader worker processes.
        hobbesian_fraction: P(a training window comes from a hobbesian episode), for a Polis
            dataset with a `hobbesian` array (curricula, DESIGN 5.4); None: windows drawn
            uniformly as stored.
        hobbesian_final: the fraction reached after the ramp (immunization); None: a constant
            hobbesian_fraction.
        ramp_start: optimizer step at which the fraction starts to move from
            hobbesian_fraction to hobbesian_final.
        ramp_steps: steps of the linear ramp from hobbesian_fraction to hobbesian_final (0: a
            jump at ramp_start).
        world: the world the config is meant for (`toy`, `physics`, `polis`); a dataset of
            another world is refused. None: any world (the model takes the dataset's).
        event_weight: a >= 0; > 0 (Polis datasets): training samples carry a per-step, per-agent
            loss weight 1 + a after the agent suffered a defection (see the module docstring);
            0: no weights.
        event_steps: how many observed steps back a suffered defection weights a step (3 covers
            a partner's move away, which starts react_delay + 1 = 3 rounds after a betrayal).
    """

    def __init__(
        self,
        path: str = "data/toy",
        observation: Literal["pixels", "state", "crops"] = "pixels",
        window: int = 16,
        stride: int = 1,
        frame_skip: int = 1,
        offset: int = 0,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        hobbesian_fraction: float | None = None,
        hobbesian_final: float | None = None,
        ramp_start: int = 0,
        ramp_steps: int = 0,
        world: str | None = None,
        event_weight: float = 0.0,
        event_steps: int = 3,
    ):
        super().__init__()
        if window < 2:
            raise ValueError(f"data.window must be >= 2, got {window}")
        for name, value, least in (
            ("stride", stride, 1),
            ("frame_skip", frame_skip, 1),
            ("offset", offset, 0),
            ("batch_size", batch_size, 1),
            ("num_workers", num_workers, 0),
            ("ramp_start", ramp_start, 0),
            ("ramp_steps", ramp_steps, 0),
            ("split_seed", split_seed, 0),
            ("event_steps", event_steps, 1),
        ):
            if value < least:
                raise ValueError(f"data.{name} must be >= {least}, got {value}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if not (isinstance(event_weight, int | float) and 0 <= event_weight < float("inf")):
            raise ValueError(f"data.event_weight must be a finite number >= 0, got {event_weight}")
        self.schedule = _schedule(hobbesian_fraction, hobbesian_final, ramp_start, ramp_steps)
        # `world` is a check, not a setting: the dataset's world is the run's (model.world),
        # and a second `world` hparam would clash with the model's when Lightning merges them
        self.save_hyperparameters(ignore=["world"])
        self.dataset = open_dataset(path)  # verifies checksums once, in the main process
        kind = self.dataset.manifest.get("kind", "dataset")
        if kind != "dataset":
            what = {"items": "an item set (`pwm items`)", "consequence": "a counterfactual set"}
            raise DatasetError(
                f"data.path {path} is {what.get(kind, kind)}, not a training dataset "
                "(make one with `pwm generate`)"
            )
        if world is not None and world != self.dataset.world:
            raise DatasetError(
                f"the config is for world {world!r} (data.world) but data.path {path} is a "
                f"{self.dataset.world!r} dataset"
            )
        if observation == "crops" and "crops" not in self.dataset.names:
            world = self.dataset.world
            how = f"`pwm generate {world} --crops PX`" if world in ("polis", "physics") else (
                f"the {world} world writes none")  # fmt: skip
            raise DatasetError(
                f"data.path {path} has no 'crops' array: object crops need the objects' positions "
                f"at generation time ({how})"
            )
        if observation not in self.dataset.names or "actions" not in self.dataset.names:
            raise DatasetError(f"data.path {path} has no {observation!r} or 'actions' array")
        if event_weight > 0 and not {"partner", "executed"} <= set(self.dataset.names):
            raise DatasetError(
                f"data.event_weight needs a Polis dataset (its 'partner' and 'executed' arrays); "
                f"data.path {path} is a {self.dataset.world!r} dataset without them"
            )
        obs_shape = self.dataset.shape(observation)
        self.world = self.dataset.world
        world_cfg = self.dataset.manifest.get("config", {})
        self.law = world_cfg.get("law", "justice") if self.world == "polis" else None
        self.obs_size = obs_shape[1]  # image side (T, H, W, 3) or features (T, F): state, crops
        self.action_dim = self.dataset.shape("actions")[1] * frame_skip  # per step: a block
        self.episode_length = obs_shape[0]
        if offset + (window - 1) * frame_skip + 1 > self.episode_length:
            raise ValueError(
                f"data.window {window} (steps of data.frame_skip {frame_skip} frames, from "
                f"data.offset {offset}) exceeds the episode length {self.episode_length}"
            )
        self.train_episodes, self.val_episodes = split_episodes(
            self.dataset.num_episodes, val_fraction, split_seed
        )
        per_episode = len(window_starts(self.episode_length, window, stride, frame_skip, offset))
        windows = len(self.train_episodes) * per_episode
        if batch_size > windows:
            raise ValueError(
                f"data.batch_size {batch_size} exceeds the {windows} training windows of "
                f"data.path {path} (a batch would repeat windows); use a smaller batch or more "
                "data"
            )
        self.train_hobbesian = None  # (E_train,) bool, with a schedule
        if self.schedule is not None:
            self.train_hobbesian = self._train_hobbesian()

    def _train_hobbesian(self) -> np.ndarray:
        """Per training episode: hobbesian or not; refuses a schedule that needs a missing group."""
        path, s = self.hparams.path, self.schedule
        if "hobbesian" not in self.dataset.names:
            raise DatasetError(
                f"data.hobbesian_fraction needs a Polis dataset with a 'hobbesian' array "
                f"(pwm generate polis --population mixture); data.path {path} has none"
            )
        flags = self.dataset.array("hobbesian")[self.train_episodes].astype(bool)  # (E_train,)
        low, high = s.bounds
        if high > 0 and not flags.any():
            name = "hobbesian_fraction" if s.fraction > 0 else "hobbesian_final"
            raise DatasetError(
                f"data.{name} reaches {high} but the training split of data.path {path} has "
                "no hobbesian episode"
            )
        if low < 1 and flags.all():
            name = "hobbesian_fraction" if s.fraction < 1 else "hobbesian_final"
            raise DatasetError(
                f"data.{name} reaches {low} but the training split of data.path {path} has "
                "no civilized episode"
            )
        return flags

    def hobbesian_p(self, step: int) -> float | None:
        """P(a training window is hobbesian) at optimizer step `step`; None without a schedule."""
        return None if self.schedule is None else self.schedule(step)

    def _dataset(self, episodes: np.ndarray, train: bool = False) -> WindowDataset:
        hp = self.hparams
        return WindowDataset(
            self.dataset.root,
            hp.observation,
            episodes,
            hp.window,
            hp.stride,
            hp.frame_skip,
            hp.offset,
            event_weight=hp.event_weight if train else 0.0,  # validation stays unweighted
            event_steps=hp.event_steps,
        )

    def _loader(self, ds: WindowDataset, **kw) -> DataLoader:
        return DataLoader(
            ds,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            generator=torch.Generator().manual_seed(self.hparams.split_seed),  # never global RNG
            worker_init_fn=functools.partial(dataloader_worker_init, parent=os.getpid()),
            **kw,
        )

    def train_sampler(
        self, start: int, num_batches: int, rank: int = 0, world_size: int = 1, accumulate: int = 1
    ) -> StepBatchSampler:
        """Training batches `start .. start + num_batches - 1`, rank `rank`'s part of each.

        Indices are those of `WindowDataset` over `train_episodes`; `accumulate` batches make
        one optimizer step (the schedule's clock).
        """
        hp = self.hparams
        per_episode = len(
            window_starts(self.episode_length, hp.window, hp.stride, hp.frame_skip, hp.offset)
        )
        place = dict(start=start, num_batches=num_batches, rank=rank, world_size=world_size)
        if self.schedule is None:
            num_items = len(self.train_episodes) * per_episode
            return StepBatchSampler(num_items, hp.batch_size, seed=hp.split_seed, **place)
        windows = np.arange(len(self.train_episodes) * per_episode).reshape(-1, per_episode)
        groups = (windows[~self.train_hobbesian].ravel(), windows[self.train_hobbesian].ravel())
        return MixtureBatchSampler(
            groups, self.schedule, hp.batch_size, hp.split_seed, accumulate=accumulate, **place
        )

    def train_dataloader(self) -> DataLoader:
        """Step-based: batches continue from the trainer's global step (exact resume)."""
        ds, hp, trainer = self._dataset(self.train_episodes, train=True), self.hparams, self.trainer
        if trainer is None or trainer.max_steps < 0:
            if self.schedule is None:
                return self._loader(ds, batch_size=hp.batch_size, shuffle=True, drop_last=True)
            if trainer is not None:
                raise ValueError("data.hobbesian_fraction schedules by step: set trainer.max_steps")
            # no trainer: one pass over the windows' worth of batches, from step 0
            return self._loader(ds, batch_sampler=self.train_sampler(0, len(ds) // hp.batch_size))
        accumulate = trainer.accumulate_grad_batches
        sampler = self.train_sampler(
            start=trainer.global_step * accumulate,
            num_batches=max(trainer.max_steps - trainer.global_step, 0) * accumulate,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            accumulate=accumulate,
        )
        return self._loader(ds, batch_sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        """Val windows in one fixed seeded order, the same at every validation. Not in file
        order: a batch of consecutive windows of one episode holds near-identical frames, and
        SIGReg (a normality test over the batch) and the embedding-health metrics need samples
        from many episodes (in file order val/reg_loss read ~24 where training read ~0.8)."""
        ds = self._dataset(self.val_episodes)
        order = np.random.default_rng([self.hparams.split_seed, 3]).permutation(len(ds)).tolist()
        return self._loader(ds, batch_size=self.hparams.batch_size, sampler=order)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()


def _schedule(
    fraction: float | None, final: float | None, ramp_start: int, ramp_steps: int
) -> FractionSchedule | None:
    """The hobbesian-fraction schedule the data.* options describe, checked; None if unset."""
    if fraction is None:
        given = [
            name
            for name, value, unset in (
                ("hobbesian_final", final, None),
                ("ramp_start", ramp_start, 0),
                ("ramp_steps", ramp_steps, 0),
            )
            if value != unset
        ]
        if given:
            raise ValueError(f"data.{given[0]} needs data.hobbesian_fraction, the initial fraction")
        return None
    for name, value in (("hobbesian_fraction", fraction), ("hobbesian_final", final)):
        if value is not None and not 0 <= value <= 1:
            raise ValueError(f"data.{name} must be in [0, 1], got {value}")
    if final is None and (ramp_start or ramp_steps):
        name = "ramp_start" if ramp_start else "ramp_steps"
        raise ValueError(f"data.{name} ramps towards data.hobbesian_final, which is not set")
    return FractionSchedule(fraction, final, ramp_start, ramp_steps)
