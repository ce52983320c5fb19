"""An item set on disk (DESIGN 4.2): a verified dataset plus its `items.json`, and its pairings.

`open_items` checks everything the probes rely on once, at the boundary: the metadata exists and
names the dataset's world, every item has the fields below and an episode that exists, every
condition a comparison uses has items, and every group holds at most one item per condition.

Comparisons pair conditions *within a group* (items built from one base scenario): a group
contributes one pair to a comparison when it holds every condition of both sides (and, for a
comparison with a `K` key, its items have that K). Quadruplets have two conditions per side and
are scored with the sum rule (metrics.sum_rule). Item order everywhere is items.json order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pwm.data.format import Dataset, open_dataset
from pwm.probes.config import ProbeError

ITEMS_FILE = "items.json"
ITEM_FIELDS = ("item_id", "episode", "group_id", "condition", "label", "t_star", "ideal_surprisal")


@dataclass
class Pairing:
    """The pairs of one comparison: item indices per side, one row per group."""

    name: str
    implausible: np.ndarray  # (P, n_imp) item indices
    plausible: np.ndarray  # (P, n_pl) item indices
    groups: np.ndarray  # (P,) group ids
    K: int | None = None


@dataclass
class ItemSet:
    root: Path
    dataset: Dataset
    meta: dict
    items: list[dict] = field(repr=False)

    @property
    def world(self) -> str:
        return self.meta["world"]

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def num_frames(self) -> int:
        return self.dataset.shape("actions")[0]

    @property
    def action_dim(self) -> int:
        return self.dataset.shape("actions")[1]

    def column(self, key: str, dtype=None) -> np.ndarray:
        """One field of every item, (I,); missing values (absent key) are NaN / -1."""
        values = [it.get(key, np.nan if dtype is float else -1) for it in self.items]
        return np.asarray(values, dtype=dtype)

    @property
    def episodes(self) -> np.ndarray:
        return self.column("episode", int)

    @property
    def t_star(self) -> np.ndarray:
        return self.column("t_star", int)

    @property
    def implausible(self) -> np.ndarray:
        return self.column("label") == "implausible"

    @property
    def conditions(self) -> list[str]:
        """Declared conditions, in order of first use by a comparison (the named tests first)."""
        used = [
            c for comp in self.meta["comparisons"] for c in comp["implausible"] + comp["plausible"]
        ]
        return list(dict.fromkeys(used + list(self.meta["conditions"])))

    def per_item(self, name: str) -> np.ndarray:
        """Array `name` of every item's episode, (I, ...), loaded into memory."""
        return self.dataset.array(name)[self.episodes]

    def pairings(self) -> list[Pairing]:
        """Every comparison of items.json as its pairs (comparisons without pairs included)."""
        cond, group, k = self.column("condition"), self.column("group_id", int), self.column("K")
        keys = zip(group.tolist(), cond.tolist(), strict=True)
        index = {key: i for i, key in enumerate(keys)}
        out = []
        for comp in self.meta["comparisons"]:
            want_k = comp.get("K")
            rows_i, rows_p, groups = [], [], []
            for g in sorted(set(group.tolist())):
                imp = [index.get((g, c)) for c in comp["implausible"]]
                pl = [index.get((g, c)) for c in comp["plausible"]]
                if None in imp or None in pl:
                    continue
                if want_k is not None and any(k[i] != want_k for i in imp + pl):
                    continue
                rows_i.append(imp)
                rows_p.append(pl)
                groups.append(g)
            shape = (len(groups), len(comp["implausible"])), (len(groups), len(comp["plausible"]))
            out.append(
                Pairing(
                    comp["name"],
                    np.asarray(rows_i, dtype=int).reshape(shape[0]),
                    np.asarray(rows_p, dtype=int).reshape(shape[1]),
                    np.asarray(groups, dtype=int),
                    want_k,
                )
            )
        return out

    def prefix_matched(self, pairing: Pairing, obs: np.ndarray) -> bool:
        """Whether every pair's two sides show the same frames before t* (as multisets).

        obs (I, T, ...) per item. For such comparisons the score difference before t* must be
        ~0 (the time-lock check): in a quadruplet each implausible item must find a plausible
        partner with its prefix, so the sum-rule difference cancels too.
        """
        if len(pairing.groups) == 0:
            return False
        ts = self.t_star

        def digest(i: int) -> str:
            return hashlib.sha1(np.ascontiguousarray(obs[i, : ts[i]]).tobytes()).hexdigest()

        for imp, pl in zip(pairing.implausible, pairing.plausible, strict=True):
            if sorted(map(digest, imp)) != sorted(map(digest, pl)):
                return False
        return True


def open_items(root: str | Path) -> ItemSet:
    """Open and check an item set made by `pwm items`; raise ProbeError naming the problem."""
    root = Path(root)
    ds = open_dataset(root)
    if ITEMS_FILE not in ds.manifest.get("extra_files", {}):
        raise ProbeError(f"{root} has no {ITEMS_FILE}: not an item set (make one with `pwm items`)")
    meta = ds.read_json(ITEMS_FILE)
    missing = {"world", "conditions", "comparisons", "items"} - set(meta)
    if missing:
        raise ProbeError(f"{root}/{ITEMS_FILE} lacks {', '.join(sorted(missing))}")
    if meta["world"] != ds.world:
        raise ProbeError(f"{root}: items.json says {meta['world']!r}, manifest {ds.world!r}")
    if "actions" not in ds.names:
        raise ProbeError(f"{root} has no 'actions' array")
    items = meta["items"]
    if not items:
        raise ProbeError(f"{root}/{ITEMS_FILE} lists no items")
    for it in items:
        lack = [f for f in ITEM_FIELDS if f not in it]
        if lack:
            raise ProbeError(f"{root}: item {it.get('item_id', '?')} lacks {', '.join(lack)}")
        if not 0 <= it["episode"] < ds.num_episodes:
            raise ProbeError(f"{root}: item {it['item_id']} names episode {it['episode']}")
        if it["condition"] not in meta["conditions"]:
            raise ProbeError(f"{root}: item {it['item_id']} has unknown condition")
    found = {it["condition"] for it in items}
    for comp in meta["comparisons"]:
        for c in comp["implausible"] + comp["plausible"]:
            if c not in found:
                raise ProbeError(
                    f"{root}: condition {c!r} (comparison {comp['name']}) has no items"
                )
    seen = set()
    for it in items:
        key = (it["group_id"], it["condition"])
        if key in seen:
            raise ProbeError(f"{root}: group {key[0]} holds two items of condition {key[1]!r}")
        seen.add(key)
    return ItemSet(root=root, dataset=ds, meta=meta, items=items)
