"""What a model's context shows of a provocation: A's answer to the ego's defection in a Polis
training set, by the pair's history visible in the last H rounds.

    python experiments/visible_history.py DATASET [--history H] [--shards N] [--json OUT]

Why: the `justice` R items at K = 1 stay the weak point of every model (0.55-0.71 over seeds and
levers) while the frame-only observer scores 0.98 there. In those items the ego (B) defects on
A at their first meeting ever, and A (a reciprocator or grim) retaliates at the next round. The
observer assumes the world's start state before its window (trust at the prior, no memories):
true for that pair by the items' construction. A model trained on windows cut anywhere in the
training runs cannot know it: a pair whose only meeting in the context is the ego's defection
may have met before the context, where an earlier defection of A can make the ego's a lawful
retaliation, which A does not answer.

Rows: every round r of every training episode where the ego (agent 0) executed D on its partner
A, A executed C, and the two meet again at round r + 1 (the provoked items' context at t* =
r + 1). Per row, whether A executes D at r + 1 (the items' `provoked_D`), grouped by what a
context of H rounds (the rounds r - H + 1 .. r, the law preset's history of 8 steps) shows:

- `first`: A and the ego never met before r (the items' K = 1);
- `hidden`: they met before r, but not within the context (the model sees what `first` shows);
- `visible K=k`: they met at the k - 1 consecutive rounds before r (k <= H), cooperating
  mutually at each (what the context shows of the items' K = k; pairs that also met before
  the context are in it too: only K = 1 is split by the hidden history);
- `visible, other`: any other visible history.

`context shows one meeting` pools `first` and `hidden`: the rate a model of the training windows
can learn for the items' K = 1, against the `first` rate the observer's assumption gives.
Round r's exchange frame is round_len (r + 1) (data_gen/polis.py). Bad input (not a Polis
training set: another world, an item or consequence set; a missing array or round_len;
--history < 1, --shards < 1) is one line on stderr, exit 2, nothing written.
"""

from __future__ import annotations

import dataset_tool
import numpy as np

from data_gen.agents import C, D  # the action codes
from pwm.data.format import Dataset, open_dataset

EGO = 0
ARRAYS = ("partner", "executed")


def category(meetings: list[int], mutual_c: list[bool], r: int, history: int) -> str:
    """The row's group from the rounds q < r at which the pair met (`meetings`, ascending) and
    whether each was a mutual cooperation (`mutual_c`)."""
    if not meetings:
        return "first"
    visible = [(q, c) for q, c in zip(meetings, mutual_c, strict=True) if q > r - history]
    if not visible:
        return "hidden"
    k = len(visible) + 1
    consecutive = [q for q, _ in visible] == list(range(r - k + 1, r))
    if consecutive and all(c for _, c in visible):
        return f"visible K={k}"
    return "visible, other"


def rows(partner: np.ndarray, executed: np.ndarray, history: int) -> dict[str, list[int]]:
    """{group: [rows, of which A defects at r + 1]} over episodes; partner and executed are
    (E, R, N) at the exchange frames."""
    out: dict[str, list[int]] = {}
    for p, e in zip(partner, executed, strict=True):
        rounds = p.shape[0]
        for r in range(rounds - 1):
            a = int(p[r, EGO])
            if a < 0 or e[r, EGO] != D or e[r, a] != C or p[r + 1, EGO] != a:
                continue
            met = [q for q in range(r) if p[q, EGO] == a]
            mutual = [bool(e[q, EGO] == C and e[q, a] == C) for q in met]
            c = out.setdefault(category(met, mutual, r, history), [0, 0])
            c[0] += 1
            c[1] += int(e[r + 1, a] == D)
    return out


def visible_history(ds: Dataset, history: int, shards: int | None = None) -> dict:
    """Every group's rows and A's defection rate, and the pooled `one meeting` context."""
    if ds.world != "polis":
        raise dataset_tool.ToolError(f"{ds.root} is a {ds.world} dataset, not polis")
    kind = ds.manifest.get("kind")
    if kind != "dataset":  # item and consequence sets are scripted crops, not natural runs
        raise dataset_tool.ToolError(f"{ds.root} is a Polis {kind} set, not a training set")
    missing = [a for a in ARRAYS if a not in ds.manifest["arrays"]]
    if missing:
        raise dataset_tool.ToolError(f"{ds.root} has no array {', '.join(missing)}")
    if "round_len" not in ds.manifest.get("config", {}):
        raise dataset_tool.ToolError(f"{ds.root}: its manifest's config has no round_len")
    round_len = int(ds.manifest["config"]["round_len"])
    counts: dict[str, list[int]] = {}
    for part, ex in zip(ds.shards("partner")[:shards], ds.shards("executed")[:shards],
                        strict=True):  # fmt: skip
        frames = part.shape[1]
        ts = round_len * (np.arange((frames - 1) // round_len) + 1)  # the exchange frames
        for g, (n, d) in rows(np.asarray(part[:, ts]), np.asarray(ex[:, ts]), history).items():
            c = counts.setdefault(g, [0, 0])
            c[0], c[1] = c[0] + n, c[1] + d

    def group(n: int, d: int) -> dict:
        return {"rows": n, "a_defects": d, "rate": d / n if n else None}

    def order(g: str) -> tuple[int, int]:
        if g.startswith("visible K="):
            return (2, int(g.split("=")[1]))
        return ({"first": 0, "hidden": 1}.get(g, 3), 0)

    groups = {g: group(*counts[g]) for g in sorted(counts, key=order)}
    pooled = [sum(counts.get(g, [0, 0])[i] for g in ("first", "hidden")) for i in (0, 1)]
    return {
        "dataset": str(ds.root),
        "law": ds.manifest.get("config", {}).get("law"),
        "ego_explore": ds.manifest.get("config", {}).get("ego_explore"),
        "episodes": sum(len(p) for p in ds.shards("partner")[:shards]),
        "history": history,
        "groups": groups,
        "one_meeting": group(*pooled),
    }


def report(res: dict, command: str) -> list[str]:
    """The markdown table."""
    lines = [
        "# What a context of {h} rounds shows of the ego's defection: A's answer at the next "
        "round".format(h=res["history"]),
        "",
        f"`{command}`: {res['dataset']} (law {res['law']}, ego_explore {res['ego_explore']}, "
        f"{res['episodes']} episodes).",
        "",
        "| the pair's history | rows | P(A defects at r + 1) |",
        "| --- | --- | --- |",
    ]

    def rate(g: dict) -> str:
        return "–" if g["rate"] is None else f"{g['rate']:.3f}"

    for name, g in res["groups"].items():
        lines.append(f"| {name} | {g['rows']} | {rate(g)} |")
    one = res["one_meeting"]
    lines += [f"| context shows one meeting (first + hidden) | {one['rows']} | {rate(one)} |", ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    p = dataset_tool.parser(__doc__)
    p.add_argument("--history", type=int, default=8, help="the context in rounds (default 8)")

    def analyse(args) -> dict:
        if args.history < 1:
            raise dataset_tool.ToolError(f"--history must be >= 1, got {args.history}")
        return visible_history(open_dataset(args.data), args.history, args.shards)

    dataset_tool.main("visible_history.py", p, argv, analyse, report)


if __name__ == "__main__":
    main()
