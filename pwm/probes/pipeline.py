"""One item set through every scorer: the per-item-set block of metrics.json.

Scorers: the trained model, a random-init model of the same architecture (seed `cfg.seed`), the
per-frame baselines the items support (pixel difference; in Polis any-defection and last-move),
the ideal observer and, in Polis, the frame-only observer given the model's context (the
achievable ceiling for that context, DESIGN 4.4). The dose-response comparisons (`M2_K{k}`,
`Q_K{k}`) are kept only for the K whose history (K rounds) fits in the model's context; a K
beyond it is not a dose but a guaranteed flat line (DESIGN 4.2); the entry lists both sets.
Each curve-based scorer is calibrated on its own plausible frames (or on a `--calib` dataset of
the world) and scored by the same code (evaluate.py).

The chance band comes from `cfg.chance_networks` more random networks (seeds cfg.seed + 1, ...).
The predictor's AdaLN-zero blocks start as the identity, so a random network predicts each frame
from the last context frame alone: its band is exactly 0.5 wherever the items of a pair show the
same frames from t* - 1 through the window (M1, and Q's sums).

The linear probes fit the model's and the random-init encoder's embeddings of the items (split
by group), or of a `--probe-data` dataset (split by episode) when one is given for this world.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.progress import Progress

from pwm.checkpoint import LoadedModel
from pwm.data.format import Dataset
from pwm.probes import baselines, linear
from pwm.probes.checkpoint import check_compatible, random_model
from pwm.probes.config import ProbeError, VoEConfig
from pwm.probes.evaluate import (
    Scores,
    check_named_tests,
    condition_curves,
    evaluate,
    from_curves,
    from_event,
    rank_metrics,
)
from pwm.probes.items import ItemSet
from pwm.probes.scores import calibrate, check_windows, event_scores
from pwm.probes.surprise import plan, run_plan

GROUND_TRUTH = ("positions", "velocities", "trust", "cues", "dispositions")


@dataclass
class Runner:
    """The trained network and the settings every model pass shares."""

    module: LoadedModel  # the world model and its hyperparameters (checkpoint.py)
    hparams: dict
    cfg: VoEConfig
    context: int
    device: str = "cpu"
    batch_size: int = 256
    progress: Progress | None = None
    plans: dict = field(default_factory=dict, repr=False)  # surprise.Plan by pass arguments

    @property
    def frame_skip(self) -> int:
        """Frames per model step (1 for checkpoints from before the option)."""
        return int(self.hparams.get("frame_skip", 1) or 1)

    @property
    def context_frames(self) -> int:
        """Frames of history the model's context spans."""
        return self.context * self.frame_skip

    def run(self, module, dataset: Dataset, mode: str, embeddings=False, label="surprise",
            surprise=True, **kw):  # fmt: skip
        """(surprise (E, T) or None, embeddings (E, T, D) or None) of the episodes of `dataset`
        (surprise.run_model's keywords: episodes, crop, phase). The pass's plan (its distinct
        frames and windows) is made once per dataset and keywords and shared by every network
        run on them: the model, the random-init model and the chance networks."""
        kw.setdefault("frame_skip", self.frame_skip)
        key = (str(dataset.root), mode, surprise, _hashable(sorted(kw.items())))
        if key not in self.plans:
            action_dim = module.model.predictor.action_dim // kw["frame_skip"]
            self.plans[key] = plan(dataset, self.hparams["observation"], self.context,
                                   action_dim, mode, windows=surprise, **kw)  # fmt: skip
        return run_plan(module.model, self.plans[key], self.batch_size, self.device, surprise,
                        embeddings, label, self.progress)  # fmt: skip


def _hashable(value):
    """A plan-cache key part: arrays by their bytes."""
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, tuple | list):
        return tuple(_hashable(v) for v in value)
    return value


def validate(r: Runner, items: ItemSet, cross_world: bool) -> str:
    """Every check that needs no model pass; returns the action mode (checkpoint.py)."""
    mode = check_compatible(r.hparams, items, cross_world)
    check_windows(items.t_star, items.num_frames, r.cfg.window, r.context_frames, str(items.root))
    check_named_tests(items)
    return mode


def probe_items(
    r: Runner,
    items: ItemSet,
    cross_world: bool = False,
    calib: Dataset | None = None,
    probe_data: Dataset | None = None,
) -> dict:
    cfg, hp = r.cfg, r.hparams
    mode = validate(r, items, cross_world)
    ts, ep, lab = items.t_star, items.episodes, items.implausible
    pairings, dose_k = doses_in_context(items, items.pairings(), r.context_frames)
    rand = random_model(hp, cfg.seed)
    tag = items.name
    phase = np.zeros(items.dataset.num_episodes, int)
    phase[ep] = ts  # a frame-skip model steps on t* (surprise.run_model)
    want = probe_data is None
    s_model, e_model = r.run(r.module, items.dataset, mode, want, f"{tag}: model", phase=phase)
    s_rand, e_rand = r.run(rand, items.dataset, mode, want, f"{tag}: random init", phase=phase)
    curves = {"model": s_model[ep], "random_init": s_rand[ep]}
    curves |= baselines.curves(items.dataset, ep)
    cals = {k: calibrate(c[~lab], "plausible items") for k, c in curves.items()}
    if calib is not None:
        cals |= calibrate_on(r, calib, items, rand, mode, set(curves))
    scores = {k: from_curves(c, cals[k], ts, cfg) for k, c in curves.items()}
    ideal = baselines.ideal_observer(items.column("ideal_surprisal", float))
    scores["ideal_observer"] = from_event(ideal, cfg)
    if items.world == "polis":
        scores["frame_only"] = from_event(baselines.frame_only(items, r.context_frames), cfg)
    chance = chance_values(r, items, pairings, mode)
    obs = items.per_item(hp["observation"])
    prefix = {p.name: items.prefix_matched(p, obs) for p in pairings}
    banded = ("model", "random_init")
    results = {
        k: evaluate(items, pairings, s, cfg, chance if k in banded and chance else None, prefix)
        for k, s in scores.items()
    }
    entry = {
        "name": tag,
        "path": str(items.root),
        "world": items.world,
        "num_items": len(items.items),
        "num_groups": len(set(items.column("group_id", int).tolist())),
        "action_mode": mode,
        "context": r.context,
        "context_frames": r.context_frames,
        "dose_K": dose_k,
        **laws(hp, items),
        "calibration": {k: c.as_dict() for k, c in cals.items()},
        "scorers": results,
        "chance": {"networks": cfg.chance_networks, "values": chance},
        "curves": {
            "tau": list(range(-cfg.curve_before, cfg.curve_after + 1)),
            **{k: condition_curves(items, scores[k].curves) for k in banded},
        },
        "per_item": per_item(items, scores),
    }
    if probe_data is not None:
        entry["linear_probes"] = linear_on_dataset(r, probe_data, items, rand, mode)
    else:
        truth = {k: items.per_item(k) for k in GROUND_TRUTH if k in items.dataset.names}
        groups = items.column("group_id", int)
        entry["linear_probes"] = compare_probes(e_model[ep], e_rand[ep], truth, groups, cfg)
        entry["linear_probes"]["source"] = "item set, split by group"
    return entry


def laws(hparams: dict, items: ItemSet) -> dict:
    """The Polis law of the items and of the model's training data (checkpoints from before the
    law option were all trained on `justice`, the only law then), and whether they differ: a
    model probed on another law's items is allowed and reported as such."""
    if items.world != "polis":
        return {}
    item_law = items.meta.get("law") or baselines.world_config(items).law
    model_law = hparams.get("law") or ("justice" if hparams.get("world") == "polis" else None)
    return {"law": item_law, "model_law": model_law,
            "law_mismatch": model_law is not None and model_law != item_law}  # fmt: skip


def doses_in_context(items: ItemSet, pairings: list, context_frames: int) -> tuple[list, dict]:
    """Drop the K comparisons whose K rounds of history do not fit in the context; returns the
    kept pairings and {"inside": [K...], "outside": [K...]}."""
    round_len = items.meta.get("round_len") or items.dataset.manifest.get("config", {}).get(
        "world", {}
    ).get("round_len", 1)
    ks = sorted({p.K for p in pairings if p.K is not None})
    inside = [k for k in ks if k * round_len <= context_frames]
    kept = [p for p in pairings if p.K is None or p.K in inside]
    return kept, {"inside": inside, "outside": [k for k in ks if k not in inside]}


def chance_values(r: Runner, items: ItemSet, pairings: list, mode: str) -> dict:
    """{comparison | 'auroc': {agg: [value per random network]}} (calibration-free metrics)."""
    cfg, H, chance = r.cfg, r.context_frames, {}
    crop = (items.t_star - H, H + cfg.window + 1)  # only the frames the event windows need
    at = np.full(len(items.items), H)  # t* inside the crop
    for k in range(cfg.chance_networks):
        net = random_model(r.hparams, cfg.seed + 1 + k)
        label = f"{items.name}: chance network {k + 1}"
        s, _ = r.run(net, items.dataset, mode, label=label, episodes=items.episodes, crop=crop,
                     phase=items.t_star)  # fmt: skip
        event = {a: event_scores(s, at, cfg.window, a) for a in cfg.aggregators}  # (I,) each
        res = rank_metrics(items, pairings, Scores(event=event, raw=event))
        for key, by_agg in res.items():
            for a, v in by_agg.items():
                chance.setdefault(key, {}).setdefault(a, []).append(v)
    return chance


def calibrate_on(r: Runner, calib: Dataset, items: ItemSet, rand, mode: str, names: set) -> dict:
    """Calibrations of every curve scorer from a held-out dataset of the items' world."""
    if calib.world != items.world:
        raise ProbeError(f"--calib {calib.root} is {calib.world!r}, items are {items.world!r}")
    obs = r.hparams["observation"]
    if obs not in calib.names or calib.shape(obs)[1:] != items.dataset.shape(obs)[1:]:
        raise ProbeError(f"--calib {calib.root} has no {obs} array of the items' shape")
    curves = {
        "model": r.run(r.module, calib, mode, label="calibration: model")[0],
        "random_init": r.run(rand, calib, mode, label="calibration: random init")[0],
    }
    curves |= baselines.curves(calib, np.arange(calib.num_episodes))
    src = f"--calib {calib.root.name}"
    return {k: calibrate(c, src) for k, c in curves.items() if k in names}


def compare_probes(e_model, e_rand, truth, groups, cfg) -> dict:
    """Linear probes of the model's and the random-init encoder's embeddings, side by side."""
    targets = linear.targets(truth)
    ours, _ = linear.probe_all(e_model, targets, groups, cfg)
    theirs, _ = linear.probe_all(e_rand, targets, groups, cfg)
    if "skipped" in ours:
        return ours
    out = {}
    for name, res in ours.items():
        key = "r2" if res["metric"] == "r2" else "accuracy"
        out[name] = {"metric": res["metric"], "model": res[key], "random_init": theirs[name][key]}
        if "majority" in res:
            out[name]["majority"] = res["majority"]
    return {"targets": out}


def linear_on_dataset(r: Runner, data: Dataset, items: ItemSet, rand, mode: str) -> dict:
    """Linear probes fitted and scored on a natural dataset of the items' world."""
    if data.world != items.world:
        raise ProbeError(f"--probe-data {data.root} is {data.world!r}, items are {items.world!r}")
    _, e_model = r.run(r.module, data, mode, True, "probe data: model", surprise=False)
    _, e_rand = r.run(rand, data, mode, True, "probe data: random init", surprise=False)
    truth = {k: data.array(k) for k in GROUND_TRUTH if k in data.names}
    out = compare_probes(e_model, e_rand, truth, np.arange(data.num_episodes), r.cfg)
    out["source"] = f"--probe-data {data.root.name}, split by episode"
    return out


def per_item(items: ItemSet, scores: dict) -> dict:
    """Item identity and every scorer's event scores, for re-analysis and `pwm report`."""
    return {
        "item_id": items.column("item_id", int).tolist(),
        "condition": items.column("condition").tolist(),
        "group_id": items.column("group_id", int).tolist(),
        "t_star": items.t_star.tolist(),
        "scores": {k: {a: v.tolist() for a, v in s.event.items()} for k, s in scores.items()},
    }
