"""A batch sampler whose batches are a pure function of (seed, global batch index).

Training is step-based (`max_steps`), so the data order is defined as an endless stream of
seeded permutations of the training windows: epoch e is `default_rng([seed, e]).permutation(N)`,
and global batch i holds stream positions [i * B * W, (i + 1) * B * W), of which rank r takes its
B. A run resumed at step g starts at batch g and sees exactly the batches an uninterrupted run
would have seen — no dataloader state to save — and every rank of a DDP job sees a disjoint part
of the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterator

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
