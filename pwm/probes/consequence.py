"""The consequence probe (DESIGN 4.6): "what happens if I defect now?", asked of the predictor.

Input: a Polis dataset of counterfactual pairs with a checksummed `consequence.json`:

    {"pairs": [{"cooperate": e_c, "defect": e_d, "t_event": t, "partner": p}, ...]}

Episodes e_c and e_d are one scenario, identical before frame t; the ego (agent 0) meets partner
p in the exchange at frame t and cooperates in e_c (its action at t - 1 has cd = +1), defects in
e_d (cd = -1); every later action is that branch's own recorded action. Ground truth arrays
`positions`, `trust` and `cues` give what the simulator says happens in each branch.

Targets, each read from an embedding by a ridge decoder fitted on the encoder's embeddings of
real frames of one part of the pairs (linear.py; split by pair):
- `distance_to_ego`: the partner's distance from the ego, computed from the decoded positions of
  both (a distance is not linear in the state, positions are: the oracle decodes them exactly);
- `trust_to_ego`: the partner's trust in the ego, decoded directly (hidden state: decodable only
  as far as the embedding of one frame carries it; its decoder's R^2 on held-out real frames is
  reported beside it);
- `partner_defects`: the partner's defect cue (its retaliation, where they meet).
For every held-out pair, the predictor rolls out `horizon` frames (horizon // S steps for a
model that steps S frames, on the frames t, t + S, ...) from the H steps before t (shared by
both branches) with each branch's actions; the decoders read the predicted embeddings. Reported
per target and step: the predicted effect (defect - cooperate, decoded from the rollouts), the
true effect (from the simulator), the effect decoded from the encoded real frames (the decoders'
own ceiling), the gap predicted - true, and `effect_ratio`: the predicted over the true effect,
each averaged over the horizon (1 = the predicted consequence has the true size; the issue's
goal is within 25%). Beside the rollout, `one_step_effect` (and `one_step_ratio`): the effect
of one-step predictions from each branch's own real frames (step s predicted from the H real
steps before it, teacher-forced). It tells apart the two ways a rollout can miss a consequence:
a one-step effect near the true one and a rollout far from it is error compounding (a lever:
training on rollouts); both far from it means the predictor does not anticipate the consequence
even when it sees every real frame before it (a lever: what the one-step model learns). At step
0 both use the same context, so they are equal.
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
TARGETS = ("distance_to_ego", "trust_to_ego", "partner_defects")
DECODED = ("positions", "trust_to_ego", "cues")  # what the decoders read off an embedding
PAIR_KEYS = ("cooperate", "defect", "t_event", "partner")  # one pair of consequence.json


def _pair_ok(pair, dataset: Dataset) -> bool:
    """One entry of consequence.json: two episodes of the set, a frame and an agent."""
    if not isinstance(pair, dict) or not all(
        isinstance(pair.get(k), int) and not isinstance(pair.get(k), bool) for k in PAIR_KEYS
    ):
        return False
    frames, agents = dataset.shape("actions")[0], dataset.manifest.get("num_objects", 1 << 30)
    return (
        all(0 <= pair[k] < dataset.num_episodes for k in ("cooperate", "defect"))
        and 0 <= pair["t_event"] < frames
        and 0 <= pair["partner"] < agents
    )


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
    doc = dataset.read_json(CONSEQUENCE_FILE)  # its schema: pairs of in-range integers
    pairs = doc.get("pairs") if isinstance(doc, dict) else None
    if not isinstance(pairs, list) or not all(_pair_ok(p, dataset) for p in pairs):
        raise ProbeError(f"{dataset.root}: {CONSEQUENCE_FILE} must list pairs of in-range "
                         f"integers {', '.join(PAIR_KEYS)}")  # fmt: skip
    rows = np.asarray([[p[k] for k in PAIR_KEYS] for p in pairs], dtype=int).reshape(-1, 4)
    if len(rows) < 4:
        raise ProbeError(f"{dataset.root}: the consequence probe needs >= 4 pairs, got {len(rows)}")
    if not {"positions", "trust", "cues", "actions"} <= set(dataset.names):
        raise ProbeError(f"{dataset.root} lacks positions, trust, cues or actions")
    return rows


def usable_pairs(
    pairs: np.ndarray, dataset: Dataset, context: int, cfg: VoEConfig, frame_skip: int = 1
) -> np.ndarray:
    """The pairs with `context` steps of `frame_skip` frames before t_event and
    consequence_horizon frames from it on in the episode; ProbeError if fewer than 4 (checked by
    the CLI before any work)."""
    T, S, H = dataset.shape("actions")[0], cfg.consequence_horizon, context * frame_skip
    if S < frame_skip:
        raise ProbeError(
            f"consequence_horizon {S} is shorter than one step of the model ({frame_skip} frames)"
        )
    ok = (pairs[:, 2] - H >= 0) & (pairs[:, 2] + S <= T)
    if ok.sum() < 4:
        raise ProbeError(
            f"{dataset.root}: fewer than 4 pairs leave room for H = {H} frames before t_event "
            f"and {S} after it in {T}-frame episodes; lower consequence_horizon"
        )
    return pairs[ok]


def _truth(dataset: Dataset) -> dict[str, np.ndarray]:
    """Per-frame ground truth (E, T, ...) of the decoders and of the effects."""
    arrays = {k: dataset.array(k) for k in ("positions", "trust", "cues")}
    out = linear.targets(arrays)  # positions (E, T, 2N), trust_to_ego (E, T, N-1), cues (E, T, 2N)
    out["partner_defects"] = out["cues"][..., arrays["cues"].shape[-1] :]  # (E, T, N): D cues
    return out


def _readers(decoders: dict, partner: np.ndarray, n: int) -> dict:
    """Per target, a function (P, S, D) embeddings -> (P, S) the partner's value."""
    rows = np.arange(len(partner))

    def decode(name, z):  # (P, S, D) -> (P, S, k)
        flat = decoders[name].predict(z.reshape(-1, z.shape[-1]).astype(np.float64))
        return flat.reshape(*z.shape[:2], -1)

    def distance(z):
        xy = decode("positions", z).reshape(*z.shape[:2], n, 2)  # (P, S, N, 2)
        return np.linalg.norm(xy[rows, :, partner] - xy[:, :, 0], axis=-1)  # (P, S)

    return {
        "distance_to_ego": distance,
        "trust_to_ego": lambda z: decode("trust_to_ego", z)[rows, :, partner - 1],
        "partner_defects": lambda z: decode("cues", z)[rows, :, n + partner],
    }


@torch.no_grad()
def consequence_probe(
    module: LoadedModel, dataset: Dataset, context: int, cfg: VoEConfig, device="cpu", progress=None
) -> dict:
    """Run the probe for a world model and its hyperparameters (checkpoint.py); returns per
    target {predicted, true, encoded, gap: lists over steps, effect_ratio, decoder_r2} (means
    over held-out pairs)."""
    hp = dict(module.hparams)
    skip = int(hp.get("frame_skip", 1) or 1)
    pairs = usable_pairs(read_pairs(dataset, hp), dataset, context, cfg, skip)
    model, observation = module.model, hp["observation"]
    n_steps, H = cfg.consequence_horizon // skip, context
    phase = np.zeros(dataset.num_episodes, int)
    phase[pairs[:, 0]] = phase[pairs[:, 1]] = pairs[:, 2]  # a frame-skip model steps on t_event
    _, emb = run_model(
        model,
        dataset,
        observation,
        H,
        device=device,
        embeddings=True,
        label="consequence: encode",
        progress=progress,
        frame_skip=skip,
        phase=phase,
        surprise=False,
    )  # fmt: skip  (E, T, D), NaN off the model's steps
    truth = _truth(dataset)
    groups = np.full(dataset.num_episodes, -1)
    groups[pairs[:, 0]] = groups[pairs[:, 1]] = np.arange(len(pairs))
    used = groups >= 0
    scores, decoders = linear.probe_all(emb[used], {k: truth[k][used] for k in DECODED},
                                        groups[used], cfg)  # fmt: skip
    train_pair, _ = linear.split(np.arange(len(pairs)), cfg.probe_train_fraction, cfg.seed)
    test = pairs[~train_pair]  # (P, 4)
    c, d, t, p = test.T
    frames = t[:, None] + skip * np.arange(n_steps)  # (P, S) the predicted steps' frames
    acts = dataset.array("actions").astype(np.float32)  # (E, T, A)
    block = action_blocks(acts, np.arange(-H, n_steps - 1), t, skip)  # (P, H + S - 1) -> frames
    z_ctx = torch.from_numpy(emb[c[:, None], t[:, None] + skip * np.arange(-H, 0)])  # (P, H, D)
    wm = model.to(device).eval()
    pred = {
        branch: wm.rollout(z_ctx.to(device), torch.from_numpy(block(ep)).to(device)).cpu().numpy()
        for branch, ep in (("cooperate", c), ("defect", d))
    }  # (P, S, D) each
    one_step = {
        branch: _one_step(wm, emb, ep, t, block(ep), H, n_steps, skip, device)
        for branch, ep in (("cooperate", c), ("defect", d))
    }  # fmt: skip  (P, S, D) each
    n = dataset.shape("positions")[1]
    read = _readers(decoders, p, n)
    out = {"pairs": len(pairs), "test_pairs": len(test), "horizon": cfg.consequence_horizon,
           "steps": n_steps, "frame_skip": skip}  # fmt: skip
    r2 = {
        "distance_to_ego": scores["positions"]["r2"],
        "trust_to_ego": scores["trust_to_ego"]["r2"],
        "partner_defects": scores["cues"]["r2"],
    }
    pos = dataset.array("positions")  # (E, T, N, 2)
    actual = {  # target -> (per-frame values (E, T, k), the partner's column (P,))
        "distance_to_ego": (np.linalg.norm(pos - pos[:, :, :1], axis=-1), p),  # (E, T, N)
        "trust_to_ego": (truth["trust_to_ego"], p - 1),
        "partner_defects": (truth["partner_defects"], p),
    }  # fmt: skip
    for name in TARGETS:
        values, col = actual[name]
        value = lambda e, f, _v=values, _c=col: _v[e, f, _c[:, None]]  # noqa: E731  (P, S)
        true = value(d[:, None], frames) - value(c[:, None], frames)  # (P, S)
        predicted = read[name](pred["defect"]) - read[name](pred["cooperate"])
        encoded = read[name](emb[d[:, None], frames]) - read[name](emb[c[:, None], frames])
        taught = read[name](one_step["defect"]) - read[name](one_step["cooperate"])
        gap = predicted - true  # (P, S)
        mean_true = float(true.mean())
        out[name] = {
            "predicted_effect": predicted.mean(0).tolist(),
            "true_effect": true.mean(0).tolist(),
            "encoded_effect": encoded.mean(0).tolist(),
            "gap": gap.mean(0).tolist(),
            "gap_se": (gap.std(0, ddof=1) / np.sqrt(len(gap))).tolist() if len(gap) > 1 else None,
            "final_gap": float(gap[:, -1].mean()),
            "effect_ratio": float(predicted.mean() / mean_true) if mean_true else None,
            "one_step_effect": taught.mean(0).tolist(),
            "one_step_ratio": float(taught.mean() / mean_true) if mean_true else None,
            "decoder_r2": r2[name],
        }
    return out


def _one_step(wm, emb, episodes, t, actions, H: int, n_steps: int, skip: int, device):
    """(P, S, D): each step s = 0..S-1 predicted from the episodes' own H real embeddings
    before it (frames t + skip (s - H) .. t + skip (s - 1)) and their action blocks
    `actions` (P, H + S - 1, A), all S windows in one predictor call."""
    z = torch.from_numpy(emb[episodes[:, None], t[:, None] + skip * np.arange(-H, n_steps - 1)])
    a = torch.from_numpy(actions)
    windows = lambda x: x.unfold(1, H, 1).movedim(-1, 2).flatten(0, 1)  # noqa: E731  (P S, H, .)
    pred = wm.predict(windows(z).to(device), windows(a).to(device), last=True)  # (P S, 1, D)
    return pred.reshape(len(episodes), n_steps, -1).cpu().numpy()


def action_blocks(acts: np.ndarray, steps: np.ndarray, t: np.ndarray, skip: int):
    """A function episodes (P,) -> (P, len(steps), A * skip) float32: per pair, the action block
    of each step k (frames t + skip k .. t + skip k + skip - 1), as the training windows' steps
    have them (pwm.data.datamodule.action_blocks)."""
    frames = t[:, None, None] + skip * steps[None, :, None] + np.arange(skip)  # (P, K, skip)

    def of(episodes: np.ndarray) -> np.ndarray:
        a = acts[episodes[:, None, None], frames]  # (P, K, skip, A)
        return a.reshape(*a.shape[:2], -1).astype(np.float32)

    return of
