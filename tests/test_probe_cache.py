"""The cached probe passes (issue 33) give the numbers of a pass per episode.

`reference_run_model` below is the probes' model pass before the cache (one forward pass per
batch of episodes, every frame of every episode encoded and every context window predicted), kept
here as the oracle. Random networks whose every parameter is perturbed (so that the AdaLN-zero
gates, zero at initialisation, pass everything through) are run both ways on small physics and
Polis item sets, whose items share their history before t* (so the cache has duplicates to
skip), with and without a frame skip, a crop, zero actions, a Gaussian head; then the whole
per-item-set probe (probe_items: calibration, event scores, every comparison, chance band,
linear probes) with either pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_gen.cli import main as data_main
from pwm.checkpoint import LoadedModel
from pwm.models import build_world_model
from pwm.probes import pipeline
from pwm.probes.config import load_config
from pwm.probes.items import open_items
from pwm.probes.surprise import frame_surprise, plan, run_model, steps

# float32: a batch of another shape, or another thread count, sums in another order. At 1 thread
# the two passes agreed to 1e-6; at 2 threads the Gaussian NLL's surprise (values up to ~100)
# differed by up to 2.6e-6 relative, so the bound is float32 rounding through a few layers, 1e-5.
TOL = dict(rtol=1e-5, atol=1e-6)


@torch.no_grad()
def reference_run_model(model, dataset, observation, context, action_mode="recorded",
                        episodes=None, batch_size=16, crop=None, frame_skip=1, phase=None,
                        embeddings=False):  # fmt: skip
    """The uncached pass (pwm/probes/surprise.py before issue 33): surprise (E, T), embeddings."""
    episodes = np.arange(dataset.num_episodes) if episodes is None else np.asarray(episodes)
    starts, length = crop if crop is not None else (np.zeros(len(episodes), int), None)
    phase = np.zeros(len(episodes), int) if phase is None else np.asarray(phase, int)
    phase = (phase - starts) % frame_skip
    obs_shards, act_shards = dataset.shards(observation), dataset.shards("actions")
    action_dim = model.predictor.action_dim // frame_skip
    surprise, embeds = [], []
    for start in range(0, len(episodes), batch_size):
        chunk = slice(start, start + batch_size)
        where = [dataset.locate(int(e)) for e in episodes[chunk]]
        frames = [slice(a, None if length is None else a + length) for a in starts[chunk]]
        obs = torch.from_numpy(
            np.stack([obs_shards[s][i, f] for (s, i), f in zip(where, frames, strict=True)])
        )
        if action_mode == "zeros":
            act = torch.zeros(*obs.shape[:2], action_dim)
        else:
            act = [act_shards[s][i, f] for (s, i), f in zip(where, frames, strict=True)]
            act = torch.from_numpy(np.stack(act).astype(np.float32))
        B, T = obs.shape[:2]
        s_out = np.full((B, T), np.nan)
        e_out = None
        for ph in np.unique(phase[chunk]):
            rows = torch.from_numpy(np.flatnonzero(phase[chunk] == ph))
            o, a, at = steps(obs[rows], act[rows], frame_skip, int(ph))
            z = model.encode(o)
            if e_out is None:
                e_out = np.full((B, T, z.shape[-1]), np.nan, np.float32)
            s = frame_surprise(model, z, a, context).double().numpy()
            s_out[rows.numpy()[:, None], at.numpy()[None]] = s
            e_out[rows.numpy()[:, None], at.numpy()[None]] = z.numpy()
        surprise.append(s_out)
        embeds.append(e_out)
    return np.concatenate(surprise), np.concatenate(embeds) if embeddings else None


@pytest.fixture(scope="module")
def item_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    common = ["--image-size", "16", "--seed", "0"]
    assert data_main(["items", "physics", "--out", str(root / "physics"), "--items", "4",
                      "--frames", "32", "--t-star-min", "8", "--t-star-max", "20",
                      *common]) == 0  # fmt: skip
    assert data_main(["items", "polis", "--out", str(root / "polis"), "--items", "2",
                      "--law", "reciprocity", *common]) == 0  # fmt: skip
    return {w: open_items(root / w) for w in ("physics", "polis")}


def hparams(world: str, observation: str, action_dim: int, frame_skip: int = 1, **kw) -> dict:
    """A small architecture of the probes' checkpoints' hyperparameters."""
    hp = dict(world=world, observation=observation, obs_size=16 if observation == "pixels" else 36,
              action_dim=action_dim * frame_skip, window=5, history=4, embed_dim=24,
              projector_hidden=32, frame_skip=frame_skip,
              encoder=dict(patch_size=8, width=16, depth=1, heads=2),
              predictor=dict(width=32, depth=2, heads=2, head_dim=8, mlp_dim=64,
                             dropout=0.0))  # fmt: skip
    return hp | kw


def perturbed(hp: dict, seed: int = 0) -> LoadedModel:
    """A network of architecture `hp` with every parameter moved off its initialisation."""
    torch.manual_seed(seed)
    arch = {k: v for k, v in hp.items() if k not in ("world", "frame_skip")}
    model = build_world_model(**arch).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return LoadedModel(model, hp)


CASES = {  # name: (world, observation, frame skip, extra hparams)
    "pixels": ("physics", "pixels", 1, {}),
    "state-skip3-gaussian": ("polis", "state", 3, {"prediction": "gaussian"}),
    "objects-skip6": ("polis", "state", 6, {"objects": 6, "embed_dim": 36}),
}


@pytest.mark.parametrize("case", CASES)
def test_cached_pass_equals_the_pass_per_episode(item_sets, case):
    world, obs, skip, extra = CASES[case]
    items = item_sets[world]
    hp = hparams(world, obs, items.action_dim, skip, **extra)
    model = perturbed(hp).model
    H, ep, ts = hp["history"], items.episodes, items.t_star
    runs = {  # name: keyword arguments of both passes
        "full": dict(embeddings=True, phase=ts),
        "crop": dict(crop=(ts - H * skip, H * skip + 5), phase=ts),
        "zeros": dict(action_mode="zeros", phase=ts),
        "repeats": dict(episodes=np.concatenate([ep[:3], ep[:3], ep[-2:]]), embeddings=True),
    }
    for name, kw in runs.items():
        kw = {"episodes": ep, **kw}
        s_old, e_old = reference_run_model(model, items.dataset, obs, H, frame_skip=skip, **kw)
        s_new, e_new = run_model(model, items.dataset, obs, H, frame_skip=skip, batch_size=7,
                                 **kw)  # fmt: skip
        assert np.isfinite(s_new).sum() > 0, name
        np.testing.assert_allclose(s_new, s_old, equal_nan=True, err_msg=name, **TOL)
        if kw.get("embeddings"):
            np.testing.assert_allclose(e_new, e_old, equal_nan=True, err_msg=name, **TOL)
    # the items share their history: fewer distinct frames and windows than frames and windows
    p = plan(items.dataset, obs, H, items.action_dim, "recorded", ep, None, skip, ts)
    seen = (p.frame_id >= 0).sum()
    assert p.num_frames < seen and p.num_windows < (p.window_id >= 0).sum()


def test_embeddings_only_pass_skips_the_predictor(item_sets):
    items = item_sets["polis"]
    hp = hparams("polis", "state", items.action_dim, 6, objects=6, embed_dim=36)
    model = perturbed(hp).model
    calls = []
    model.predictor.register_forward_hook(lambda *a: calls.append(1))
    s, e = run_model(model, items.dataset, "state", 4, frame_skip=6, phase=items.t_star % 6,
                     embeddings=True, surprise=False)  # fmt: skip
    assert s is None and not calls
    _, e_ref = reference_run_model(model, items.dataset, "state", 4, frame_skip=6,
                                   phase=items.t_star % 6, embeddings=True)  # fmt: skip
    np.testing.assert_allclose(e, e_ref, equal_nan=True, **TOL)


@pytest.mark.parametrize("world", ["physics", "polis"])
def test_probe_items_equals_the_uncached_probe(item_sets, world, monkeypatch, tmp_path):
    """The whole per-item-set block of metrics.json, cached (one plan per pass arguments, shared
    by the model, the random-init model and the chance networks) and uncached."""
    items = item_sets[world]
    skip = 6 if world == "polis" else 1
    hp = hparams(world, "state", items.action_dim, skip)
    module = perturbed(hp)
    cfg = load_config("experiments/voe.yaml")
    cfg = type(cfg)(**{**cfg.as_dict(), "chance_networks": 3, "bootstrap_resamples": 100})
    runner = pipeline.Runner(module, hp, cfg, hp["history"])
    cached = pipeline.probe_items(runner, items)
    # 4 passes (model, random init, chance networks x 3) on 2 distinct sets of arguments
    assert len(runner.plans) == 2

    def uncached(self, module, dataset, mode, embeddings=False, label="", surprise=True, **kw):
        kw.setdefault("frame_skip", self.frame_skip)
        return reference_run_model(module.model, dataset, self.hparams["observation"],
                                   self.context, mode, embeddings=embeddings, **kw)  # fmt: skip

    monkeypatch.setattr(pipeline.Runner, "run", uncached)
    plain = pipeline.probe_items(pipeline.Runner(module, hp, cfg, hp["history"]), items)
    for scorer, by_agg in plain["per_item"]["scores"].items():
        for agg, values in by_agg.items():
            np.testing.assert_allclose(cached["per_item"]["scores"][scorer][agg], values,
                                       equal_nan=True, err_msg=scorer, **TOL)  # fmt: skip
    for scorer, block in plain["scorers"].items():
        for name, comp in block["comparisons"].items():
            for agg in cfg.aggregators:
                got = cached["scorers"][scorer]["comparisons"][name][agg]["paired_accuracy"]
                np.testing.assert_equal(got, comp[agg]["paired_accuracy"], (scorer, name, agg))
    for key, by_agg in plain["chance"]["values"].items():
        np.testing.assert_equal(cached["chance"]["values"][key], by_agg, key)
    for target, res in plain["linear_probes"]["targets"].items():
        for k in ("model", "random_init"):
            assert cached["linear_probes"]["targets"][target][k] == pytest.approx(res[k], rel=1e-4)
