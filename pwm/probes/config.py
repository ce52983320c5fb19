"""The probe settings: one YAML file (`experiments/voe.yaml`) read into a frozen dataclass.

The file is the single place where the window, the aggregators, the context length H and the
statistics are fixed (DESIGN 4.1: "before results are seen"); the dataclass has no defaults, so
a value cannot silently come from anywhere else. Unknown or missing keys and impossible values
fail at load with one line naming the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

AGGREGATORS = ("max", "mean")


class ProbeError(ValueError):
    """Bad probe input (checkpoint, item set, config); reported as one line, exit code 2."""


@dataclass(frozen=True)
class VoEConfig:
    """See experiments/voe.yaml for what each field means and why it has its value."""

    context: int | None
    window: int
    aggregators: tuple[str, ...]
    primary: str
    calibration: str
    chance_networks: int
    ci_level: float
    bootstrap_resamples: int
    seed: int
    betrayal_tests: tuple[str, ...]
    headline: dict
    curve_before: int
    curve_after: int
    time_lock_tolerance: float
    probe_train_fraction: float
    ridge_lambdas: tuple[float, ...]
    logistic_l2: float
    probe_max_frames: int
    consequence_horizon: int

    def __post_init__(self):
        bad = [a for a in self.aggregators if a not in AGGREGATORS]
        if bad or not self.aggregators:
            raise ProbeError(f"voe config: aggregators must be among {AGGREGATORS}, got {bad}")
        if self.primary not in self.aggregators:
            raise ProbeError(f"voe config: primary {self.primary!r} is not in aggregators")
        if self.window < 0 or (self.context is not None and self.context < 1):
            raise ProbeError("voe config: window must be >= 0 and context >= 1 (or null)")
        if self.calibration != "plausible_items":
            raise ProbeError("voe config: calibration must be plausible_items (or pass --calib)")
        if self.chance_networks < 0 or self.bootstrap_resamples < 1:
            raise ProbeError("voe config: chance_networks >= 0 and bootstrap_resamples >= 1")
        if not 0 < self.ci_level < 1 or not 0 < self.probe_train_fraction < 1:
            raise ProbeError("voe config: ci_level and probe_train_fraction must be in (0, 1)")
        if min(self.curve_before, self.curve_after, self.consequence_horizon) < 1:
            raise ProbeError("voe config: curve_before, curve_after, consequence_horizon >= 1")
        if not self.ridge_lambdas or min(self.ridge_lambdas) <= 0 or self.logistic_l2 < 0:
            raise ProbeError("voe config: ridge_lambdas must be > 0 and logistic_l2 >= 0")

    def as_dict(self) -> dict:
        return asdict(self)


def load_config(path: str | Path) -> VoEConfig:
    """Read and check a probe config file; raise ProbeError (one line) if it is not valid."""
    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"probe config {path} not found (the default is experiments/voe.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ProbeError(f"probe config {path} is not valid YAML ({type(e).__name__})") from None
    if not isinstance(raw, dict):
        raise ProbeError(f"probe config {path} must be a mapping of keys to values")
    names = {f.name for f in fields(VoEConfig)}
    unknown, missing = sorted(set(raw) - names), sorted(names - set(raw))
    if unknown or missing:
        raise ProbeError(f"probe config {path}: unknown keys {unknown}, missing keys {missing}")
    for key in ("aggregators", "betrayal_tests", "ridge_lambdas"):
        raw[key] = tuple(raw[key])
    raw["ridge_lambdas"] = tuple(float(v) for v in raw["ridge_lambdas"])
    return VoEConfig(**raw)
