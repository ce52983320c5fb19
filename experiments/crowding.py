"""A named Polis comparison split by how crowded A was at the last frame the model saw.

    python experiments/crowding.py PROBE_DIR ITEMS [--test R] [--frame-skip 6] [--json OUT]

PROBE_DIR: a `pwm probe` folder (its metrics.json keeps every item's event score per scorer);
ITEMS: the Polis item set it was probed on. For every group, the comparison's pair (for R:
provoked_C against provoked_D) is scored from the per-item scores (max aggregator, ties 0.5 as in
the probe), for the model and every baseline, and the groups are split by the number of agents
other than A within exchange reach of A at t* - frame_skip (the last step of a round-level
model's context; B, the partner, is one of them).

Why: Polis pairs agents greedily closest-first at the exchange frame (data_gen/polis.py::pair),
and the state shows who is where and which cue each agent shows, not (by default) who met whom.
To expect A's retaliation the model must work out that A's partner of the last round was B; with
a third agent near A that is a relational inference, and a model that misses it expects A to
cooperate with the other. The frame-only observer is given who met whom.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from data_gen.polis import pair
from pwm.data.format import DatasetError, open_dataset
from pwm.probes import metrics as M

TESTS = {name: (imp[0], pl[0]) for name, (imp, pl) in M.POLIS_TESTS.items() if len(imp) == 1}


class CrowdingError(Exception):
    """Bad input: one line for the user."""


def crowding(
    per_item: dict, positions: np.ndarray, reach: float, test: str = "R", frame_skip: int = 6
) -> dict[str, list[dict]]:
    """scorer -> rows {others_in_reach, groups, paired_accuracy} for `test`'s pairs.

    per_item: metrics.json's per_item (item_id, condition, group_id, t_star, scores); the item
    id is the episode index of the item set; positions: the item set's (E, T, N, 2)."""
    if test not in TESTS:
        raise CrowdingError(f"unknown test {test!r}; known: {', '.join(TESTS)}")
    imp_c, pl_c = TESTS[test]
    cond, group = per_item["condition"], np.asarray(per_item["group_id"])
    idx = {(c, g): i for i, (c, g) in enumerate(zip(cond, group, strict=True))}
    groups = sorted({g for c, g in idx if c == imp_c} & {g for c, g in idx if c == pl_c})
    if not groups:
        raise CrowdingError(f"no {imp_c} / {pl_c} pairs in the probe's items")
    imp = np.array([idx[(imp_c, g)] for g in groups])
    pl = np.array([idx[(pl_c, g)] for g in groups])
    near = others_in_reach(positions, [per_item["item_id"][i] for i in pl],
                           [per_item["t_star"][i] for i in pl],
                           [per_item["agent_a"][i] for i in pl], reach, frame_skip)  # fmt: skip
    out = {}
    for scorer, by_agg in per_item["scores"].items():
        s = np.asarray(by_agg["max"], dtype=float)
        won = M.pair_outcomes(s[imp], s[pl])
        out[scorer] = [{"others_in_reach": int(n), "groups": int((near == n).sum()),
                        "paired_accuracy": round(float(won[near == n].mean()), 4)}
                       for n in np.unique(near)]  # fmt: skip
    return out


def others_in_reach(positions, episodes, t_star, agent_a, reach: float, frame_skip: int):
    """Per item, the number of agents other than A within `reach` of A at t* - frame_skip, (B,);
    positions (E, T, N, 2), the other arguments one entry per item. (The pair shares its prefix:
    either item's positions serve.)"""
    ep, a = np.asarray(episodes), np.asarray(agent_a)
    last = positions[ep, np.asarray(t_star) - frame_skip]  # (B, N, 2)
    d = np.linalg.norm(last - last[np.arange(len(ep)), a][:, None], axis=-1)  # (B, N)
    d[np.arange(len(ep)), a] = np.inf
    return (d < reach).sum(1)


def paired_with_b(
    per_item: dict, positions: np.ndarray, reach: float, frame_skip: int = 6
) -> float:
    """Fraction of provoked_D items in which Polis's own closest-first pairing of the positions
    at t* - frame_skip pairs A with B: the partner is decidable from the last context frame."""
    rows = [i for i, c in enumerate(per_item["condition"]) if c == "provoked_D"]
    if not rows:
        raise CrowdingError("no provoked_D items in the probe's items")
    ep = np.array([per_item["item_id"][i] for i in rows])
    t = np.array([per_item["t_star"][i] for i in rows])
    last = positions[ep, t - frame_skip]  # (B, N, 2)
    partner = pair(np.linalg.norm(last[:, :, None] - last[:, None], axis=-1), reach)  # (B, N)
    a = np.array([per_item["agent_a"][i] for i in rows])
    b = np.array([per_item["agent_b"][i] for i in rows])
    return float(np.mean(partner[np.arange(len(rows)), a] == b))


def load(probe: Path, items: Path) -> tuple[dict, np.ndarray, float]:
    """The probe's per-item scores (with each item's A) and the item set's positions, reach."""
    f = probe / "metrics.json"
    if not f.is_file():
        raise CrowdingError(f"{probe} has no metrics.json (expected a `pwm probe` folder)")
    ds = open_dataset(items)
    if ds.manifest.get("world") != "polis":
        raise CrowdingError(f"{items} is not a Polis item set")
    entries = [e for e in json.loads(f.read_text())["items"] if e.get("world") == "polis"]
    if not entries:
        raise CrowdingError(f"{probe} holds no Polis item set")
    per = dict(entries[0]["per_item"])
    known = {x["item_id"]: x for x in ds.read_json("items.json")["items"]}
    try:
        per["agent_a"] = [known[i]["agent_a"] for i in per["item_id"]]
        per["agent_b"] = [known[i]["agent_b"] for i in per["item_id"]]
    except KeyError as exc:
        raise CrowdingError(f"{probe} was not probed on {items} (item {exc} unknown)") from None
    return per, ds.array("positions"), ds.manifest["config"]["world"]["exchange_radius"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("probe", type=Path, help="a `pwm probe` output folder")
    p.add_argument("items", type=Path, help="the Polis item set it was probed on")
    p.add_argument("--test", default="R", help=f"one of {', '.join(TESTS)} (default R)")
    p.add_argument("--frame-skip", type=int, default=6, help="frames per model step (default 6)")
    p.add_argument("--json", type=Path, help="also write the table as JSON")
    args = p.parse_args(argv)
    try:
        if args.frame_skip < 1:
            raise CrowdingError(f"--frame-skip must be >= 1, got {args.frame_skip}")
        per, positions, reach = load(args.probe, args.items)
        table = crowding(per, positions, reach, args.test, args.frame_skip)
        b = paired_with_b(per, positions, reach, args.frame_skip)
    except (CrowdingError, DatasetError) as exc:
        print(f"crowding.py: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for scorer, rows in table.items():
        cells = ", ".join(f"{r['others_in_reach']}: {r['paired_accuracy']:.2f} ({r['groups']})"
                          for r in rows)  # fmt: skip
        print(f"{scorer:<15} {args.test} by agents within reach of A (groups): {cells}")
    print(f"Polis's closest-first pairing at t* - {args.frame_skip} pairs A with B in {b:.3f} of "
          "the provoked_D items")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(table | {"paired_with_b": b}, indent=1) + "\n")


if __name__ == "__main__":
    main()
