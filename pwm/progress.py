"""Progress of pwm's long commands, readable on a terminal and in a log file.

Every long command (generation, fits, probes, reports) shows where it is, so that progress and
a hang never look the same:

- on a terminal (stderr is a TTY), rich progress bars;
- anywhere else (a pipe, `make demo > log`, a cluster job's log), rich draws nothing useful, so
  `LogProgress` prints one plain line at most every `every` seconds instead, for the task that
  advanced last, and nothing for work that ends sooner.

`bar()` returns the one that fits; both offer the part of rich's `Progress` API that pwm uses
(`add_task`, `advance`, `update`, `remove_task`, used as a context manager), so code that takes
a rich Progress (pwm/probes/surprise.py) takes either. `FitProgress` is the Lightning callback
of `pwm fit`: a rich bar or a compact line every tenth of the run with step, losses and ETA.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from lightning.pytorch.callbacks import ProgressBar
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def is_terminal() -> bool:
    """Whether progress bars can be drawn (stderr is an interactive terminal)."""
    return Console(stderr=True).is_terminal


def duration(seconds: float) -> str:
    """`42 s`, `3.5 min`, `1.2 h`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def rich_bar(*fields: str, transient: bool = True) -> Progress:
    """rich's Progress on stderr: description, bar, done/total, `fields` (task fields shown as
    text), elapsed and remaining time."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(f"{{task.fields[{f}]}}") for f in fields),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=transient,
    )


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0


class LogProgress:
    """rich's Progress API as plain lines on stderr: at most one line every `every` seconds."""

    def __init__(self, every: float = 30.0, stream=None) -> None:
        self.every = every
        self.stream = stream
        self.tasks: dict[int, _Task] = {}
        self._next_id = 0
        self._t0 = self._last = time.monotonic()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        self._next_id += 1
        self.tasks[self._next_id] = _Task(description, total)
        return self._next_id

    def update(self, task_id: int, *, advance=None, completed=None, total=None, description=None,
               **fields) -> None:  # fmt: skip
        t = self.tasks[task_id]
        t.total = t.total if total is None else total
        t.description = t.description if description is None else description
        t.completed = t.completed if completed is None else completed
        t.completed += advance or 0
        self._maybe_print(t)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def remove_task(self, task_id: int) -> None:
        self.tasks.pop(task_id, None)

    def _maybe_print(self, t: _Task) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        of = f"/{t.total:.0f}" if t.total else ""
        print(f"  {t.description}: {t.completed:.0f}{of} ({duration(now - self._t0)})",
              file=self.stream or sys.stderr, flush=True)  # fmt: skip


def bar(every: float = 30.0) -> Progress | LogProgress:
    """A transient rich bar on a terminal, a LogProgress (a line every `every` s) elsewhere."""
    return rich_bar() if is_terminal() else LogProgress(every)


class FitProgress(ProgressBar):
    """`pwm fit`'s progress: one line when training starts (steps, trainable parameters,
    device), then a rich bar with the losses on a terminal, or a plain line at every tenth of
    the steps in a log, and one line when it ends. It also stands in for Lightning's
    model-summary table (pwm/cli.py turns that off when this bar is on)."""

    def __init__(self, lines: int = 10, stream=None) -> None:
        super().__init__()
        self.lines = lines
        self.stream = stream
        self._enabled = True
        self._bar: Progress | None = None
        self._task = None
        self._t0 = 0.0
        self._first = 0
        self._next = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def _on(self) -> bool:
        return self._enabled and self.trainer.is_global_zero

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def _losses(self) -> str:
        m = self.get_metrics(self.trainer, self.trainer.lightning_module)
        out = [f"{k.replace('_', '/')} {float(m[k]):.4f}" for k in ("train_loss", "val_loss")
               if k in m]  # fmt: skip
        return ", ".join(out)

    def _total(self) -> int:
        steps = self.trainer.max_steps
        return steps if steps > 0 else int(self.trainer.estimated_stepping_batches)

    def on_train_start(self, trainer, pl_module) -> None:
        if not self._on:
            return
        self._t0, self._first, total = time.monotonic(), trainer.global_step, self._total()
        params = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        start = f" from step {self._first}" if self._first else ""
        self._print(f"fit: {total} steps{start}, {params / 1e3:,.1f} K trainable parameters, "
                    f"{trainer.strategy.root_device.type}")  # fmt: skip
        self._next = self._first + max(1, total // self.lines)
        if is_terminal() and self.stream is None:
            self._bar = rich_bar("losses")
            self._bar.start()
            self._task = self._bar.add_task("fit", total=total, completed=self._first, losses="")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._on:
            return
        step = trainer.global_step
        if self._bar is not None:
            self._bar.update(self._task, completed=step, losses=self._losses())
            if step >= self._total():
                self._close()  # before Lightning's "`Trainer.fit` stopped" line
        elif step >= self._next or step == self._total():
            self._next += max(1, self._total() // self.lines)
            done = step - self._first
            rate = done / max(1e-9, time.monotonic() - self._t0)
            left = (self._total() - step) / rate if rate else 0.0
            self._print(f"  step {step}/{self._total()}: {self._losses()} "
                        f"({rate:.1f} steps/s, {duration(left)} left)")  # fmt: skip

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def on_train_end(self, trainer, pl_module) -> None:
        if not self._on:
            return
        self._close()
        took = duration(time.monotonic() - self._t0)
        self._print(f"fit: step {trainer.global_step} in {took}; {self._losses()}")

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._close()
