"""What pwm prints on the console, and what it keeps third-party packages from printing.

- `quiet()`: silence the known, harmless noise of the packages pwm runs on — Lightning's
  advertising tips, its accelerator inventory ("GPU available: ..., TPU available: ...") and
  the `LeafSpec` deprecation that Lightning's own `_pytree` module triggers in torch — at its
  source: one logging filter that drops those exact records, one warnings filter that matches
  that exact message and module. Nothing else is hidden: every other warning, and every error,
  still reaches the console. Called by the `pwm` entry point, never at import.
- `DefaultsHelpFormatter`: argparse help that states every option's default.
"""

from __future__ import annotations

import argparse
import logging
import warnings

# Lightning's rank-zero info lines that carry no information about the run
_NOISE = ("💡 Tip:", "GPU available:", "TPU available:", "HPU available:")
_LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)


class _DropNoise(logging.Filter):
    """Drop the log records whose message starts with one of `_NOISE`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_NOISE)


def quiet() -> None:
    """Install the filters (idempotent)."""
    for name in _LIGHTNING_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in log.filters):
            log.addFilter(_DropNoise())
    # torch deprecated LeafSpec; lightning.pytorch.utilities._pytree still builds one per batch
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"lightning\.pytorch\.utilities\._pytree",
    )


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Ends each option's help with its default, unless the text already names one or there is
    none to state (None, False, an empty string); an option must have help text to be shown."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text, default = action.help or "", action.default
        none = (
            default is None
            or default is False
            or default in ("", [])
            or default is argparse.SUPPRESS
        )
        if none or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"
