"""Batch samplers whose batches are a pure function of (seed, global batch index).

Training is step-based (`max_steps`), so the data order is defined as an endless stream of
seeded permutations of the training windows: epoch e is `default_rng([seed, e]).permutation(N)`,
and global batch i holds stream positions [i * B * W, (i + 1) * B * W), of which rank r takes its
B. A run resumed at step g starts at batch g and sees exactly the batches an uninterrupted run
would have seen — no dataloader state to save — and every rank of a DDP job sees a disjoint part
of the same global batch.

`MixtureBatchSampler` is the data schedule of the curricula (DESIGN 5.4): the training windows
form two groups, civilized (0) and hobbesian (1), and P(a window is hobbesian) follows a
`FractionSchedule` of the optimizer step (batch index // accumulate_grad_batches). Choices:
- Slot k of global batch i (stream position q = i * B * W + k) is hobbesian with probability
  p(step), drawn for the whole global batch from `default_rng([seed, i, 1])`: independent per
  slot, so a batch's hobbesian share is binomial around p, not exactly p.
- The slot then takes position q of its group's own endless stream of seeded permutations
  (group g, epoch e: `default_rng([seed, e, 2, g]).permutation(N_g)`, e = q // N_g). Each group
  is thus walked without replacement, thinned to the slots it wins: a batch never holds a window
  twice unless a group's epoch boundary falls inside it (as in StepBatchSampler); at p = 0 or 1
  the chosen group is walked exactly like StepBatchSampler walks all windows, and at 0 < p < 1
  every window of a group is equally likely at every position.
- Everything is a pure function of (seed, i): exact resume needs no sampler state, and rank r
  takes slots [r * B, (r + 1) * B) of the same global batch, so the ranks' parts concatenate, in
  rank order, to the batch a single process with batch B * W would draw.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Yields batches `start .. start + num_batches - 1` of the seeded stream, this rank's part."""

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int,
        start: int,
        num_batches: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        if num_items < 1:
            raise ValueError("the training split has no windows")
        self.n, self.b, self.seed = num_items, batch_size, seed
        self.start, self.num_batches = start, num_batches
        self.rank, self.world = rank, world_size
        self._perm: tuple[int, np.ndarray] | None = None

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n))
        return self._perm[1]

    def batch(self, i: int) -> list[int]:
        """Indices of this rank's part of global batch i."""
        first = (i * self.world + self.rank) * self.b
        out = []
        for p in range(first, first + self.b):
            epoch, pos = divmod(p, self.n)
            out.append(int(self._permutation(epoch)[pos]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for i in range(self.start, self.start + self.num_batches):
            yield self.batch(i)

    def __len__(self) -> int:
        # Training is one step-based epoch of `start + num_batches` batches, of which a resumed
        # run has already consumed `start`: Lightning restores its batch counter to `start`, so
        # this length makes its epoch end exactly at max_steps, not `start` batches later.
        return self.start + self.num_batches


@dataclass(frozen=True)
class FractionSchedule:
    """p(step): `fraction` before `ramp_start`, linear to `final` over `ramp_steps`, then `final`.

    `ramp_steps` 0 is a jump at `ramp_start`; `final` None keeps `fraction` throughout.
    """

    fraction: float
    final: float | None = None
    ramp_start: int = 0
    ramp_steps: int = 0

    def __call__(self, step: int) -> float:
        if self.final is None or step < self.ramp_start:
            return self.fraction
        if step >= self.ramp_start + self.ramp_steps:
            return self.final
        return self.fraction + (self.final - self.fraction) * (
            (step - self.ramp_start) / self.ramp_steps
        )

    @property
    def bounds(self) -> tuple[float, float]:
        """(lowest, highest) p over all steps."""
        final = self.fraction if self.final is None else self.final
        return min(self.fraction, final), max(self.fraction, final)


class MixtureBatchSampler(StepBatchSampler):
    """StepBatchSampler over two groups of windows, mixed by a schedule (see the module docstring).

    `groups` are (civilized, hobbesian) window indices; `accumulate` batches make one step.
    """

    def __init__(
        self,
        groups: Sequence[np.ndarray],
        schedule: FractionSchedule,
        batch_size: int,
        seed: int,
        start: int,
        num_batches: int,
        rank: int = 0,
        world_size: int = 1,
        accumulate: int = 1,
    ):
        super().__init__(
            sum(len(g) for g in groups), batch_size, seed, start, num_batches, rank, world_size
        )
        low, high = schedule.bounds
        for g, (needed, name) in enumerate(((low < 1, "civilized"), (high > 0, "hobbesian"))):
            if needed and len(groups[g]) == 0:
                raise ValueError(f"the schedule draws {name} windows but there are none")
        self.groups = [np.asarray(g, dtype=np.int64) for g in groups]
        self.schedule, self.accumulate = schedule, accumulate
        self._perms: dict[int, tuple[int, np.ndarray]] = {}

    def _group_permutation(self, g: int, epoch: int) -> np.ndarray:
        if g not in self._perms or self._perms[g][0] != epoch:
            rng = np.random.default_rng([self.seed, epoch, 2, g])
            self._perms[g] = (epoch, self.groups[g][rng.permutation(len(self.groups[g]))])
        return self._perms[g][1]

    def batch(self, i: int) -> list[int]:
        """Indices of this rank's part of global batch i."""
        size = self.b * self.world  # the global batch
        p = self.schedule(i // self.accumulate)
        hobbesian = np.random.default_rng([self.seed, i, 1]).random(size) < p  # (B * W,)
        out = []
        for k in range(self.rank * self.b, (self.rank + 1) * self.b):
            g = int(hobbesian[k])
            epoch, pos = divmod(i * size + k, len(self.groups[g]))
            out.append(int(self._group_permutation(g, epoch)[pos]))
        return out
