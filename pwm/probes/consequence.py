"""The consequence probe (DESIGN 4.6): "what happens if I defect now?", asked of the predictor.

Input: a Polis dataset of counterfactual pairs with a checksummed `consequence.json`:

    {"pairs": [{"cooperate": e_c, "defect": e_d, "t_event": t, "partner": p}, ...]}

Episodes e_c and e_d are one scenario, identical before frame t; the ego (agent 0) meets partner
p in the exchange at frame t and cooperates in e_c (its action at t - 1 has cd = +1), defects in
e_d (cd = -1); every later action is that branch's own recorded action. Ground truth arrays
`positions` and `trust` give what the simulator says happens in each branch.

Procedure: ridge decoders for the partner's trust in the ego and its distance from the ego are
fitted on the encoder's embeddings of real frames of one part of the pairs (linear.py; split by
pair). For every held-out pair, the predictor rolls out `horizon` steps from the H embeddings
before t (shared by both branches) with each branch's actions; the decoders read the predicted
embeddings. Reported per target and step: the predicted effect (defect - cooperate, decoded
from the rollouts), the true effect (from the simulator), the effect decoded from the encoded
real frames (the decoders' own ceiling), and the gap predicted - true.
"""

from __future__ import annotations

import numpy as np
import torch

from pwm.checkpoint import LoadedModel
from pwm.data.format import Dataset
from pwm.probes import linear
from pwm.probes.checkpoint import check_dataset
from pwm.probes.config import ProbeError, VoEConfig
from pwm.probes.surprise import run_model

CONSEQUENCE_FILE = "consequence.json"
TARGETS = ("trust_to_ego", "distance_to_ego")


def read_pairs(dataset: Dataset, hparams: dict) -> np.ndarray:
    """(P, 4) int rows (cooperate, defect, t_event, partner); ProbeError if absent or bad."""
    if CONSEQUENCE_FILE not in dataset.manifest.get("extra_files", {}):
        raise ProbeError(f"{dataset.root} has no {CONSEQUENCE_FILE}: not a counterfactual set")
    if dataset.world != hparams["world"]:
        raise ProbeError(
            f"--consequence {dataset.root} is {dataset.world!r} but the model was trained on "
            f"{hparams['world']!r}: the probe conditions on the world's own actions"
        )
    check_dataset(hparams, dataset, "--consequence")
    pairs = dataset.read_json(CONSEQUENCE_FILE).get("pairs", [])
    rows = np.asarray(
        [[p["cooperate"], p["defect"], p["t_event"], p["partner"]] for p in pairs], dtype=int
    ).reshape(-1, 4)
    if len(rows) < 4:
        raise ProbeError(f"{dataset.root}: the consequence probe needs >= 4 pairs, got {len(rows)}")
    if not {"positions", "trust", "actions"} <= set(dataset.names):
        raise ProbeError(f"{dataset.root} lacks positions, trust or actions")
    return rows


def usable_pairs(pairs: np.ndarray, dataset: Dataset, context: int, cfg: VoEConfig) -> np.ndarray:
    """The pairs with `context` frames before t_event and consequence_horizon after it in the
    episode; ProbeError if fewer than 4 (checked by the CLI before any work)."""
    T, S, H = dataset.shape("actions")[0], cfg.consequence_horizon, context
    ok = (pairs[:, 2] - H >= 0) & (pairs[:, 2] + S <= T)
    if ok.sum() < 4:
        raise ProbeError(
            f"{dataset.root}: fewer than 4 pairs leave room for H = {H} frames before t_event "
            f"and {S} after it in {T}-frame episodes; lower consequence_horizon"
        )
    return pairs[ok]


@torch.no_grad()
def consequence_probe(
    module: LoadedModel, dataset: Dataset, context: int, cfg: VoEConfig, device="cpu", progress=None
) -> dict:
    """Run the probe for a world model and its hyperparameters (checkpoint.py); returns per
    target {predicted, true, encoded, gap: lists over steps} (means over held-out pairs)."""
    pairs = usable_pairs(read_pairs(dataset, dict(module.hparams)), dataset, context, cfg)
    model, observation = module.model, module.hparams["observation"]
    S, H = cfg.consequence_horizon, context
    label = "consequence: encode"
    _, emb = run_model(
        model,
        dataset,
        observation,
        H,
        device=device,
        embeddings=True,
        label=label,
        progress=progress,
    )
    truth = linear.targets({k: dataset.array(k) for k in ("positions", "trust")})
    groups = np.full(dataset.num_episodes, -1)
    groups[pairs[:, 0]] = groups[pairs[:, 1]] = np.arange(len(pairs))
    used = groups >= 0
    sub = {k: truth[k][used] for k in TARGETS}
    _, decoders = linear.probe_all(emb[used], sub, groups[used], cfg)
    train_pair, _ = linear.split(np.arange(len(pairs)), cfg.probe_train_fraction, cfg.seed)
    test = pairs[~train_pair]  # (P, 4)
    c, d, t, p = test.T
    steps = t[:, None] + np.arange(S)  # (P, S) frames t .. t + S - 1
    acts = torch.from_numpy(dataset.array("actions").astype(np.float32))  # (E, T, A)
    span = t[:, None] + np.arange(-H, S - 1)  # (P, H + S - 1) action frames of the rollout
    z_ctx = torch.from_numpy(emb[c[:, None], t[:, None] + np.arange(-H, 0)])  # (P, H, D)
    wm = model.to(device).eval()
    pred = {
        branch: wm.rollout(z_ctx.to(device), acts[ep[:, None], span].to(device)).cpu().numpy()
        for branch, ep in (("cooperate", c), ("defect", d))
    }  # (P, S, D) each
    out = {"pairs": len(pairs), "test_pairs": len(test), "horizon": S}
    for name in TARGETS:
        dec = decoders[name]
        col = p - 1  # partner's column among agents 1..N-1

        def read(z, _dec=dec, _col=col):  # (P, S, D) -> (P, S) the partner's column
            flat = _dec.predict(z.reshape(-1, z.shape[-1]).astype(np.float64))
            return flat.reshape(*z.shape[:2], -1)[np.arange(len(_col)), :, _col]

        true = (
            truth[name][d[:, None], steps, col[:, None]]
            - truth[name][c[:, None], steps, col[:, None]]
        )
        predicted = read(pred["defect"]) - read(pred["cooperate"])
        encoded = read(emb[d[:, None], steps]) - read(emb[c[:, None], steps])
        gap = predicted - true  # (P, S)
        out[name] = {
            "predicted_effect": predicted.mean(0).tolist(),
            "true_effect": true.mean(0).tolist(),
            "encoded_effect": encoded.mean(0).tolist(),
            "gap": gap.mean(0).tolist(),
            "gap_se": (gap.std(0, ddof=1) / np.sqrt(len(gap))).tolist() if len(gap) > 1 else None,
            "final_gap": float(gap[:, -1].mean()),
        }
    return out
