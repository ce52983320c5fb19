"""What does an `oracle` model expect at a betrayal item's event? Its predicted cues, read out.

    python experiments/oracle_readout.py CKPT ITEMS [--json OUT]

With `--model.target oracle` the embedding is the simulator state standardised per feature, so
the prediction of z_{t*} maps back to state units: A's and B's predicted C and D cue values at
the event frame (means over the items), and P(D) = d / (c + d) of those means (their sum is the
predicted chance that an exchange is drawn at all). The prediction depends only on the frames
before t*, so the two contexts of the betrayal tests are read from one condition each: `trust`
(trust_C, the prefix of trust_D) and `provoked` (provoked_D, the prefix of provoked_C). A
reciprocity-aware observer raises A's P(D) after the provocation well above its trust-context
value (the training data: from 0.07 to 0.59, experiments/contingency.py).

`a_err_if_c` / `a_err_if_d`: the squared latent error of A's two cue features at t* if A
cooperates / defects there (the prediction against the standardised one-hot cue, mean over the
items), i.e. those features' share of the surprise s(t*) times F. The betrayal tests compare
exactly these: M1 is err_if_d of `trust` against err_if_d of `provoked`, R is err_if_c against
err_if_d of `provoked`. Under a squared error a calibrated P(D) only slightly above 1/2 leaves R
a small margin, although the log-probability of the ideal observer separates it well.

`--by-crowding`: R at the event from A's cue features alone (err_if_c > err_if_d per provoked
item), split by how many agents other than A stood within exchange reach of A at the last frame
the model sees (t* - frame_skip). Polis pairs agents greedily closest-first at the exchange frame
(data_gen/polis.py::pair), so with a third agent near A the model cannot know from the frames
before t* whether A will meet B (and retaliate) or the other (and cooperate); the frame-only
observer is told who met whom at t*.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from crowding import others_in_reach

from pwm.checkpoint import CheckpointError, load_world_model
from pwm.data.format import DatasetError, open_dataset
from pwm.models import WorldModel
from pwm.probes.surprise import steps

CONTEXTS = {"trust": "trust_C", "provoked": "provoked_D"}


def _select(items: list[dict], condition: str) -> list[dict]:
    sel = [x for x in items if x["condition"] == condition]
    if not sel:
        raise ValueError(f"no {condition} items: not a Polis betrayal item set")
    return sel


def _predict(model, history, state, actions, sel, frame_skip) -> torch.Tensor:
    """The standardised state predicted at t* (B, F) from the `history` steps of `frame_skip`
    frames before it, with their action blocks, as in training."""
    ep, t = np.array([x["episode"] for x in sel]), sel[0]["t_star"]
    span = slice(t - history * frame_skip, t)
    obs = torch.from_numpy(state[ep, span]).float()  # (B, H S, F)
    act = torch.from_numpy(actions[ep, span]).float()  # (B, H S, A)
    obs, act, _ = steps(obs, act, frame_skip, 0)  # (B, H, F), (B, H, A S)
    return model.predict(model.encode(obs), act)[:, -1]


def _a_errors(pred_z, sel, layout, mean, std) -> dict[str, torch.Tensor]:
    """A's squared cue error at t* if A cooperates / defects, standardised units, per item."""
    per = len(layout)
    a = torch.tensor([x["agent_a"] for x in sel]) * per
    cols = torch.stack([a + layout.index("cue_c"), a + layout.index("cue_d")], dim=1)  # (B, 2)
    have = pred_z.gather(1, cols)  # (B, 2): A's predicted cue_c, cue_d
    onehots = {"a_err_if_c": [1.0, 0.0], "a_err_if_d": [0.0, 1.0]}
    return {name: (have - (torch.tensor(v) - mean[cols]) / std[cols]).square().sum(1)
            for name, v in onehots.items()}  # fmt: skip


def _standardiser(model: WorldModel) -> tuple[torch.Tensor, torch.Tensor]:
    bn = model.projector.bn
    return bn.running_mean, torch.sqrt(bn.running_var + bn.eps)


@torch.no_grad()
def readout(
    model: WorldModel,
    history: int,
    state: np.ndarray,
    actions: np.ndarray,
    items: list[dict],
    layout: list,
    frame_skip: int = 1,
) -> dict[str, dict[str, float]]:
    """Mean predicted cues of A and B at t* per context (from the `history` steps of
    `frame_skip` frames before it, with their action blocks, as in training), in state units,
    P(D) from them, and A's cue error if it cooperates or defects (standardised units, mean over
    items)."""
    mean, std = _standardiser(model)
    per = len(layout)
    c_idx, d_idx = layout.index("cue_c"), layout.index("cue_d")
    model.eval()
    out = {}
    for context, condition in CONTEXTS.items():
        sel = _select(items, condition)
        pred_z = _predict(model, history, state, actions, sel, frame_skip)
        pred = pred_z * std + mean  # (B, F): raw units
        row = {}
        for who in ("a", "b"):
            agent = torch.tensor([x[f"agent_{who}"] for x in sel])
            c = pred[torch.arange(len(sel)), agent * per + c_idx]
            d = pred[torch.arange(len(sel)), agent * per + d_idx]
            c, d = c.mean().item(), d.mean().item()  # ratio of means: per-item c + d can be ~0
            row |= {f"{who}_cue_c": c, f"{who}_cue_d": d, f"{who}_p_defect": d / (c + d)}
        row |= {k: v.mean().item() for k, v in _a_errors(pred_z, sel, layout, mean, std).items()}
        out[context] = {k: round(v, 4) for k, v in row.items()}
    return out


@torch.no_grad()
def by_crowding(
    model: WorldModel,
    history: int,
    state: np.ndarray,
    actions: np.ndarray,
    positions: np.ndarray,
    items: list[dict],
    layout: list,
    reach: float,
    frame_skip: int = 1,
) -> list[dict]:
    """Per number of other agents within `reach` of A at t* - frame_skip: provoked items and the
    fraction whose A cue error is larger for a cooperation than for a defection (R at the event,
    A's cue features only)."""
    sel = _select(items, CONTEXTS["provoked"])
    model.eval()
    pred_z = _predict(model, history, state, actions, sel, frame_skip)
    err = _a_errors(pred_z, sel, layout, *_standardiser(model))
    passed = (err["a_err_if_c"] > err["a_err_if_d"]).numpy()
    near = others_in_reach(positions, [x["episode"] for x in sel], [x["t_star"] for x in sel],
                           [x["agent_a"] for x in sel], reach, frame_skip)  # fmt: skip
    return [{"others_in_reach": int(k), "items": int((near == k).sum()),
             "r_at_event": round(float(passed[near == k].mean()), 4)}
            for k in np.unique(near)]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ckpt", help="last.ckpt of a run with --model.target oracle")
    p.add_argument("items", type=Path, help="a Polis item set (pwm items polis)")
    p.add_argument("--json", type=Path, help="also write the readout as JSON")
    p.add_argument("--by-crowding", action="store_true",
                   help="also R at the event per number of agents within reach of A")  # fmt: skip
    args = p.parse_args(argv)
    try:
        model, hp = load_world_model(args.ckpt)
        if hp.get("target") != "oracle":
            raise CheckpointError(f"checkpoint {args.ckpt} is not an oracle model")
        ds = open_dataset(args.items)
        items = ds.read_json("items.json")["items"]
        table = readout(model, hp["history"], ds.array("state"), ds.array("actions"), items,
                        ds.manifest["state_layout"], hp.get("frame_skip", 1))  # fmt: skip
        if args.by_crowding:
            reach = ds.manifest["config"]["world"]["exchange_radius"]
            table["by_crowding"] = by_crowding(
                model, hp["history"], ds.array("state"), ds.array("actions"),
                ds.array("positions"), items, ds.manifest["state_layout"], reach,
                hp.get("frame_skip", 1))  # fmt: skip
    except (CheckpointError, DatasetError, ValueError, KeyError) as exc:
        sys.exit(f"oracle_readout.py: error: {exc}")
    for context, row in table.items():
        if context == "by_crowding":
            for r in row:
                print(f"others within reach of A {r['others_in_reach']}: {r['items']} items, "
                      f"R at the event {r['r_at_event']:.3f}")  # fmt: skip
            continue
        print(f"{context:<9} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
