"""Worker processes that end with their parent, whatever kills it.

A worker of `ProcessPoolExecutor` (`pwm generate --workers N`) or of a DataLoader
(`data.num_workers`) blocks on a queue whose write end it inherited itself, so when its parent is
killed (`kill -9`, the OOM killer) nothing ever wakes it: it stays alive, blocked, holding its
memory. `die_with_parent` is called first thing in every such worker:

- on Linux it asks the kernel to send the worker SIGKILL the moment its parent dies
  (`prctl(PR_SET_PDEATHSIG)`), then checks that the parent is still the one that started it
  (the parent may have died between the fork and the `prctl`, and the signal would never come);
- elsewhere, a daemon thread polls the parent's pid every half second and exits the worker when
  it changes.

Either way the worker does not outlive its parent by more than a moment. PR_SET_PDEATHSIG fires
when the *thread* that forked the worker exits; both pools are started from the main thread.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int | None = None) -> None:
    """Make this process end when its parent does; `parent` is the pid it must have now
    (default: the current parent)."""
    parent = os.getppid() if parent is None else parent
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def dataloader_worker_init(worker_id: int, parent: int) -> None:
    """`worker_init_fn` of pwm's DataLoaders (with `parent` bound to the training process's
    pid): the worker ends with that process."""
    die_with_parent(parent)
