"""An item set on disk (DESIGN 4.2): a verified dataset plus its `items.json`, and its pairings.

`open_items` checks everything the probes rely on once, at the boundary (`check_meta`): the
metadata is a mapping that names the dataset's world; conditions, comparisons and items have the
types the probes read; every item has the fields below, a unique id, an episode that exists, a t*
inside it and the label of its condition; every condition a comparison uses exists and has
items; and every group holds at most one item per condition. A violation is one line naming the
field, never a KeyError or TypeError later.

Comparisons pair conditions *within a group* (items built from one base scenario): a group
contributes one pair to a comparison when it holds every condition of both sides (and, for a
comparison with a `K` key, its items have that K). Quadruplets have two conditions per side and
are scored with the sum rule (metrics.sum_rule). Item order everywhere is items.json order.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pwm.data.format import Dataset, open_dataset
from pwm.probes.config import ProbeError

ITEMS_FILE = "items.json"
LABELS = ("plausible", "implausible")
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
    kind = ds.manifest.get("kind", "items")
    if kind != "items":
        what = {"dataset": "a training dataset", "consequence": "a counterfactual set"}[kind]
        raise ProbeError(f"{root} is {what}, not an item set (make one with `pwm items`)")
    if ITEMS_FILE not in ds.manifest.get("extra_files", {}):
        raise ProbeError(f"{root} has no {ITEMS_FILE}: not an item set (make one with `pwm items`)")
    meta = ds.read_json(ITEMS_FILE)
    if "actions" not in ds.names:
        raise ProbeError(f"{root} has no 'actions' array")
    check_meta(meta, ds, f"{root}/{ITEMS_FILE}")
    return ItemSet(root=root, dataset=ds, meta=meta, items=meta["items"])


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value) -> bool:
    """A non-empty list of condition names."""
    return isinstance(value, list) and bool(value) and all(isinstance(c, str) for c in value)


# item field -> the per-episode array that records it, where the generator wrote one
RECORDED = {"t_star": "item_t_star", "K": "item_K", "agent_a": "item_a", "agent_b": "item_b",
            "object": "item_object", "partner": "item_partner"}  # fmt: skip


def check_against_arrays(items: list[dict], ds: Dataset, where: str) -> None:
    """items.json against the dataset it describes: one item per episode; the conditions in
    one-to-one correspondence with the generator's per-episode `item_condition` codes (items of
    one code share one condition, and no two codes share one); and every field the generator also
    recorded per episode (`item_t_star`, `item_K`, ...) equal to that record. So an item cannot
    describe an episode that shows something else."""
    episodes = [it["episode"] for it in items]
    if len(set(episodes)) != len(episodes):
        twice = next(e for e in episodes if episodes.count(e) > 1)
        raise ProbeError(f"{where}: episode {twice} is named by two items")
    arrays = {f: ds.array(a) for f, a in RECORDED.items() if a in ds.names and ds.shape(a) == ()}
    codes = ds.array("item_condition") if "item_condition" in ds.names else None
    name_of, code_of = {}, {}
    for it in items:
        e, cond = it["episode"], it["condition"]
        if codes is not None:
            code = int(codes[e])
            if name_of.setdefault(code, cond) != cond or code_of.setdefault(cond, code) != code:
                raise ProbeError(f"{where}: item {it['item_id']} is {cond!r}, but episode {e} "
                                 "holds another kind of item (item_condition)")  # fmt: skip
        for key, values in arrays.items():
            if key in it and it[key] != int(values[e]):
                raise ProbeError(f"{where}: item {it['item_id']}'s {key} {it[key]} differs "
                                 f"from episode {e}'s recorded {int(values[e])}")  # fmt: skip


def check_meta(meta, ds: Dataset, where: str) -> None:
    """The schema of items.json, checked against its dataset: ProbeError naming the first
    field that is missing, of the wrong type, out of range or inconsistent (see the module
    docstring for what the probes rely on)."""
    if not isinstance(meta, dict):
        raise ProbeError(f"{where} must be a JSON object")
    missing = {"world", "conditions", "comparisons", "items"} - set(meta)
    if missing:
        raise ProbeError(f"{where} lacks {', '.join(sorted(missing))}")
    if meta["world"] != ds.world:
        raise ProbeError(f"{where} says world {meta['world']!r}, its manifest {ds.world!r}")
    conditions = meta["conditions"]
    if not isinstance(conditions, dict | list) or not conditions:
        raise ProbeError(f"{where}: conditions must be a non-empty mapping or list of names")
    if not all(isinstance(c, str) for c in conditions):
        raise ProbeError(f"{where}: every condition must be named by a string")
    labels = {}
    if isinstance(conditions, dict):
        for c, spec in conditions.items():
            label = spec.get("label") if isinstance(spec, dict) else None
            if label not in (None, *LABELS):
                raise ProbeError(f"{where}: condition {c!r} has label {label!r}")
            labels[c] = label
    for key, ok in (("round_len", lambda v: _is_int(v) and v >= 1),
                    ("law", lambda v: isinstance(v, str)),
                    ("ego_is_b", lambda v: isinstance(v, bool))):  # fmt: skip
        if key in meta and not ok(meta[key]):
            raise ProbeError(f"{where}: {key} has the wrong type or value ({meta[key]!r})")
    comparisons = meta["comparisons"]
    if not isinstance(comparisons, list):
        raise ProbeError(f"{where}: comparisons must be a list")
    names = set()
    for i, comp in enumerate(comparisons):
        if not isinstance(comp, dict) or not isinstance(comp.get("name"), str):
            raise ProbeError(f"{where}: comparison {i} must be a mapping with a name")
        name = comp["name"]
        if name in names:
            raise ProbeError(f"{where}: comparison {name!r} is listed twice")
        names.add(name)
        if not _names(comp.get("implausible")) or not _names(comp.get("plausible")):
            raise ProbeError(f"{where}: comparison {name} needs non-empty implausible and "
                             "plausible lists of conditions")  # fmt: skip
        if "K" in comp and not (_is_int(comp["K"]) and comp["K"] >= 1):
            raise ProbeError(f"{where}: comparison {name} has K {comp['K']!r}")
        for c in comp["implausible"] + comp["plausible"]:
            if c not in conditions:
                raise ProbeError(f"{where}: comparison {name} uses unknown condition {c!r}")
    items = meta["items"]
    if not isinstance(items, list) or not items:
        raise ProbeError(f"{where} lists no items")
    frames = ds.shape("actions")[0]
    objects = ds.manifest.get("num_objects")
    ids, seen = set(), set()
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise ProbeError(f"{where}: item {i} is not a mapping")
        lack = [f for f in ITEM_FIELDS if f not in it]
        if lack:
            raise ProbeError(f"{where}: item {it.get('item_id', i)!r} lacks {', '.join(lack)}")
        ints = ("item_id", "episode", "group_id", "t_star", "K", "agent_a", "agent_b", "object",
                "partner")  # fmt: skip
        for key in ints:
            if key in it and not _is_int(it[key]):
                raise ProbeError(f"{where}: item {i}'s {key} must be an integer, got {it[key]!r}")
        if it["item_id"] in ids:
            raise ProbeError(f"{where}: item_id {it['item_id']} is listed twice")
        ids.add(it["item_id"])
        if not 0 <= it["episode"] < ds.num_episodes:
            raise ProbeError(f"{where}: item {it['item_id']} names episode {it['episode']} of "
                             f"{ds.num_episodes}")  # fmt: skip
        if not 0 <= it["t_star"] < frames:
            raise ProbeError(f"{where}: item {it['item_id']} has t* {it['t_star']} outside its "
                             f"{frames} frames")  # fmt: skip
        for key in ("agent_a", "agent_b"):
            if key in it and _is_int(objects) and not -1 <= it[key] < objects:
                raise ProbeError(f"{where}: item {it['item_id']}'s {key} {it[key]} is not one "
                                 f"of the {objects} agents")  # fmt: skip
        if it.get("K", 0) < 0:
            raise ProbeError(f"{where}: item {it['item_id']} has K {it['K']}")
        cond = it["condition"]
        if not isinstance(cond, str) or cond not in conditions:
            raise ProbeError(f"{where}: item {it['item_id']} has unknown condition {cond!r}")
        if it["label"] not in LABELS or labels.get(cond) not in (None, it["label"]):
            raise ProbeError(f"{where}: item {it['item_id']} has label {it['label']!r} "
                             f"(condition {cond!r})")  # fmt: skip
        surprisal = it["ideal_surprisal"]
        if (
            isinstance(surprisal, bool)
            or not isinstance(surprisal, int | float)
            or not (math.isfinite(surprisal))
        ):
            raise ProbeError(f"{where}: item {it['item_id']}'s ideal_surprisal is {surprisal!r}")
        key = (it["group_id"], cond)
        if key in seen:
            raise ProbeError(f"{where}: group {key[0]} holds two items of condition {cond!r}")
        seen.add(key)
    check_against_arrays(items, ds, where)
    found = {it["condition"] for it in items}
    for comp in comparisons:
        for c in comp["implausible"] + comp["plausible"]:
            if c not in found:
                raise ProbeError(f"{where}: condition {c!r} (comparison {comp['name']}) has no "
                                 "items")  # fmt: skip
