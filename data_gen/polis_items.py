"""Polis violation-of-expectation items (DESIGN 4.2): one item = one episode of an item set.

A *group* is built from one natural history (polis_search.py) and holds one item of every
condition, in `names_of(law)` order (CONDITIONS minus the controls the world's law cannot
produce), so group g is episodes [G g, G g + G). A = the trusted partner whose action is the
event, B = the ego (agent 0), whose actions are the model's recorded action inputs: at the event
B's action is given, identical in the two items of every comparison, so only A's action can
surprise and "M1 must not be decided by B" holds by construction (DESIGN 4.2). Construction:

- The M-group conditions replay one natural run (a "base": A and the ego met for the first time
  K rounds before t* and cooperated mutually at each of those K consecutive rounds, then met at
  the next two rounds, t* and t2) under scripts that force executed actions from the K-th
  meeting on (a forced action is a tremble, the lawful choice or the ego's choice; its exact
  policy probability is the item's surprisal). The ego cooperates at t* in every M-group item.
  trust_C / trust_D differ only in A's action at t* (identical prefix: M2), so do provoked_D /
  provoked_C (R). provoked_* differ from trust_* only by the ego's action at the K-th meeting
  (M1, and its mirror M1C): with react_delay >= 2 (checked) the trust change moves nobody before
  t* + round_len, so in trust_D and provoked_D the frames [t*, t* + round_len) are identical
  pixel for pixel. visual_C is trust_C with A's colour changed from t* on; teleport is trust_C
  with A jumping to a distant free spot at t*; forgive_lawful / forgive_acausal follow the ego's
  betrayal of A at t* to the pair's next meeting t2, where A retaliates (lawful) or, having
  updated its trust and memory as if the ego had cooperated (a violation of the trust law),
  cooperates and keeps approaching the ego.
- The controls (habitual_D, stranger_D, noisy_D, and norm_D under `justice`) are natural events
  found in their own runs, nothing forced; they are paired with the group's betrayal by group,
  not by prefix.
- Every variant's event meeting is checked to happen in the replayed run; a group where one
  does not is dropped. Nothing is placed by hand except the teleport's landing spot.

Each item episode is the crop [t_event - before, t_event + after) of its run, so every item
has t_star = before; the default `before` (60 frames, 10 rounds) holds the context of a model
that steps one round at a time. Dose-response: each group has one K (cycling over KS); every
item carries its `K` (for controls: the number of earlier A-ego meetings), and comparisons
`M2_K{k}`/`Q_K{k}` restrict M2 and Q to the groups with that K; the M-group's whole history is
its K rounds, so a model sees all of it when K rounds fit its context (the probe keeps only those
K, DESIGN 4.2). Ideal surprisal: -log P(A's executed action at the event | full state), from the
policy probabilities (B's action, the ego's, is an input, not an event); a law violation
(teleport, acausal forgiveness) has probability 0 and is stored as IMPOSSIBLE (items.json's
`ideal_surprisal_violation`, the same value as physics items).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_gen import polis
from data_gen import polis_search as search
from data_gen.agents import C, D
from data_gen.polis_config import PolisConfig
from data_gen.render import PALETTE
from pwm.data.format import DatasetError, open_dataset, shard_name, write_json_atomic

KS = (1, 2, 4, 8)
IMPOSSIBLE = 1e9  # surprisal stored for events of probability 0 (as physics_items does)
ITEMS_FILE = "items.json"
_P, _I = "plausible", "implausible"
CONDITIONS = {
    "trust_C": (_P, "A and the ego cooperated at their K meetings; A cooperates at t*"),
    "trust_D": (_I, "same history; A defects at t*, unprovoked (betrayal, a tremble)"),
    "provoked_D": (_P, "as trust_*, but the ego defected on A at meeting K; A retaliates at t*"),
    "provoked_C": (_I, "as provoked_D; A (reciprocator or grim) cooperates at t*"),
    "visual_C": (_P, "trust_C with A's colour changed from t* on (appearance only)"),
    "teleport": (_I, "trust_C, but at t* A jumps to a distant free spot (game physics violated)"),
    "forgive_lawful": (_P, "the ego betrays A at their last meeting; A retaliates at t*"),
    "forgive_acausal": (_I, "the ego betrays A at their last meeting; A trusts the ego as if it "
                            "had cooperated: cooperates at t* and keeps approaching"),
    "habitual_D": (_P, "A defected on the ego at every earlier meeting, defects at t* (natural)"),
    "stranger_D": (_P, "A meets the ego for the first time and defects at t* (natural)"),
    "noisy_D": (_P, "noisy A trembled on the ego before and trembles into a defection at t*"),
    "norm_D": (_P, "A saw the ego defect unprovoked on a third agent; A punishes it at t* "
                   "(natural; law justice only)"),
}  # fmt: skip
NAMES = tuple(CONDITIONS)
M_GROUP = NAMES[:8]  # replays of one base; the rest are natural controls
COMPARISONS = [
    ("M2", ["trust_D"], ["trust_C"]),
    ("R", ["provoked_C"], ["provoked_D"]),
    ("M1", ["trust_D"], ["provoked_D"]),
    ("M1C", ["provoked_C"], ["trust_C"]),  # M1's mirror: the same histories, A cooperates
    ("Q", ["trust_D", "provoked_C"], ["trust_C", "provoked_D"]),
    *[(f"control_{c}", ["trust_D"], [f"{c}_D"]) for c in search.CONTROLS],
    ("control_visual", ["trust_D"], ["visual_C"]),
    ("forgiveness", ["forgive_acausal"], ["forgive_lawful"]),
    ("teleport", ["teleport"], ["trust_C"]),
    ("selectivity", ["teleport"], ["visual_C"]),
]
_RUNS = ("TC", "TD", "PD", "PC", "TP", "FL", "FA")  # scripted replays of one base
_SOURCE = dict(trust_C="TC", trust_D="TD", provoked_D="PD", provoked_C="PC", visual_C="TC",
               teleport="TP", forgive_lawful="FL", forgive_acausal="FA")  # fmt: skip


def names_of(law: str) -> tuple[str, ...]:
    """The conditions of an item set of this law, in group order."""
    return (*M_GROUP, *(f"{c}_D" for c in search.controls_of(law)))


def comparisons_of(law: str) -> list[tuple[str, list[str], list[str]]]:
    """COMPARISONS whose conditions an item set of this law has."""
    have = set(names_of(law))
    return [c for c in COMPARISONS if set(c[1] + c[2]) <= have]


@dataclass(frozen=True)
class ItemsConfig:
    """`pwm items polis` config: the world searched (its `frames` = search run length), the crop
    (`before`, `after` frames around t*) and the search batch size."""

    world: PolisConfig = field(default_factory=lambda: PolisConfig(frames=480))
    before: int = 60
    after: int = 16
    search_batch: int = 256

    def __post_init__(self):
        w = self.world
        if w.react_delay < 2:
            raise ValueError("--react-delay must be >= 2 for items (M1 needs identical outcomes)")
        if self.before < w.round_len + 1 or self.after < 1:
            raise ValueError(f"--before must be > round_len and --after >= 1, got "
                             f"{self.before}, {self.after}")  # fmt: skip
        if w.frames < self.before + self.after + (max(KS) + 3) * w.round_len:
            raise ValueError(f"--search-frames {w.frames} is too short for K = {max(KS)}")
        if w.n_agents < 3:
            raise ValueError("items need --agents >= 3 (A, the ego and a third party)")

    @property
    def names(self) -> tuple[str, ...]:
        """The conditions of one group, in order."""
        return names_of(self.world.law)

    @property
    def episodes_per_shard(self) -> int:
        return 8 * len(self.names)  # 8 groups: two of each K


def simulate_items(cfg: ItemsConfig, rng: np.random.Generator, episodes: int) -> dict:
    """`generate_dataset`'s simulate: `episodes` (a multiple of the conditions) item episodes,
    group-major."""
    names, controls = cfg.names, search.controls_of(cfg.world.law)
    groups = episodes // len(names)
    ks = [KS[g % len(KS)] for g in range(groups)]
    runs, pool_b, pool_c = [], {k: [] for k in KS}, {c: [] for c in controls}
    done = {k: [] for k in KS}  # verified replays per K
    for _ in range(100):
        want = {k: ks.count(k) - len(done[k]) for k in KS}
        if not any(want.values()):
            break
        _search(cfg, rng, runs, pool_b, pool_c, want, groups)
        todo = [pool_b[k].pop() for k in KS for _ in range(want[k])]
        for base, built in zip(todo, _replay(cfg, rng, runs, todo), strict=True):
            if all(ok for _, _, ok in built.values()):
                done[base[1].K].append((built, base[1]))
    else:
        raise DatasetError("Polis items: too many replays failed their checks")
    items = []  # (one run's truth, t_event, recolour A, condition, Found)
    for g, k in enumerate(ks):
        built, base = done[k][ks[:g].count(k)]
        for name in M_GROUP:
            truth, t_ev, _ = built[_SOURCE[name]]
            t_ev += cfg.world.round_len if name.startswith("forgive") else 0
            items.append((truth, t_ev, name == "visual_C", name, base))
        for kind in controls:
            i, found = pool_c[kind][g]
            t_ev = (found.round + 1) * cfg.world.round_len
            items.append((_one(runs[i][1], found.episode), t_ev, False, f"{kind}_D", found))
    return _crop_and_render(cfg, items)


def _one(truth: dict, e: int) -> dict:
    return {k: v[e] for k, v in truth.items()}


def _search(cfg: ItemsConfig, rng, runs: list, pool_b: dict, pool_c: dict, want: dict, groups):
    """Natural runs until the pools hold `want[K]` bases per K and `groups` of each control;
    each pool is shuffled once its batch is added, so draws are spread over episodes."""
    w = cfg.world
    for _ in range(400):
        short_b = [k for k in KS if len(pool_b[k]) < want[k]]
        short_c = [c for c in pool_c if len(pool_c[c]) < groups]
        if not short_b and not short_c:
            return
        sc = polis.draw_scenario(w, rng, cfg.search_batch)
        runs.append((sc, polis.run(w, sc)))
        i, truth = len(runs) - 1, runs[-1][1]
        for k in short_b:
            found = search.bases(w, truth, k, cfg.before, cfg.after + w.round_len)
            pool_b[k][:0] = [(i, found[j]) for j in rng.permutation(len(found))]
        for c in short_c:
            found = search.controls(w, truth, c, cfg.before, cfg.after)
            pool_c[c] += [(i, found[j]) for j in rng.permutation(len(found))]
    raise DatasetError(
        "Polis items: the natural runs did not produce enough histories; "
        "raise --search-frames or use a population with more cooperators"
    )


def _replay(cfg: ItemsConfig, rng, runs: list, bases: list) -> list[dict]:
    """Replay each base under the seven scripts; per base {run: (truth, t*, checks passed)}."""
    w, n_runs = cfg.world, len(_RUNS)
    if not bases:
        return []
    sc = polis.Scenario.cat([runs[i][0].take([f.episode] * n_runs) for i, f in bases])
    script = polis.Script.natural(w, len(bases) * n_runs)
    spots = rng.random((len(bases), 64, 2)) * (1 - 4 * w.radius) + 2 * w.radius
    for g, (i, f) in enumerate(bases):
        a, b, r = f.a, f.b, f.round  # t* is round r; meeting K is round r - 1; t2 is round r + 1
        row = {name: g * n_runs + j for j, name in enumerate(_RUNS)}
        m_runs = [row[x] for x in ("TC", "TD", "PD", "PC", "TP")]
        script.force[r, m_runs, b] = C  # the ego cooperates at t* in every M-group item
        script.force[r, [row["TC"], row["TP"]], a] = C
        script.force[r, row["TD"], a] = D
        script.force[r - 1, [row["PD"], row["PC"]], b] = D  # the ego's provocation at meeting K
        script.force[r, row["PD"], a], script.force[r, row["PC"], a] = D, C
        script.force[r, [row["FL"], row["FA"]], b] = D  # the ego betrays A at t* ...
        script.force[r, [row["FL"], row["FA"]], a] = C  # ... which A, trusting, did not expect
        script.force[r + 1, [row["FL"], row["FA"]], b] = C
        script.force[r + 1, row["FL"], a], script.force[r + 1, row["FA"], a] = D, C
        script.erase[r, row["FA"], a] = True  # A updates as if the ego had cooperated
        t1 = (r + 1) * w.round_len
        script.teleport_frame[row["TP"]], script.teleport_agent[row["TP"]] = t1, a
        script.teleport_to[row["TP"]] = _landing(runs[i][1]["positions"][f.episode, t1], a,
                                                 spots[g])  # fmt: skip
    truth = polis.run(w, sc, script)
    out = []
    for g, (_, f) in enumerate(bases):
        t1, t2 = (f.round + 1) * w.round_len, (f.round + 2) * w.round_len
        group = {}
        for j, name in enumerate(_RUNS):
            tr = _one(truth, g * n_runs + j)
            ok = name == "TP" or tr["partner"][t1, f.a] == f.b
            ok &= not name.startswith("F") or tr["partner"][t2, f.a] == f.b
            group[name] = (tr, t1, bool(ok))
        out.append(group)
    return out


def _landing(pos: np.ndarray, a: int, spots: np.ndarray) -> np.ndarray:
    """Among candidate spots >= 0.35 from A, the one farthest from every agent."""
    d = np.linalg.norm(spots[:, None] - pos[None], axis=-1)  # (S, N)
    return spots[int(np.argmax(np.where(d[:, a] >= 0.35, d.min(1), -1.0)))]


def _new_colour(n: int, a: int) -> np.ndarray:
    """A's colour in visual_C: an unused palette colour, or A's inverse when all 12 are used."""
    return PALETTE[n] if n < len(PALETTE) else 255 - PALETTE[a]


def _crop_and_render(cfg: ItemsConfig, items: list) -> dict[str, np.ndarray]:
    """Crop every item to [t_event - before, t_event + after), render, and add item fields."""
    w, span, n, names = cfg.world, cfg.before + cfg.after, cfg.world.n_agents, cfg.names
    per_frame = list(polis.frame_arrays(n))
    out = {k: [] for k in (*per_frame, "colors", "dispositions", "tremble", "hobbesian")}
    fields = {k: [] for k in ("condition", "K", "a", "b", "surprisal", "frame0")}
    for truth, t_ev, recolour, name, found in items:
        f0 = t_ev - cfg.before
        for k in per_frame:
            out[k].append(truth[k][f0 : f0 + span])
        colors = np.repeat(PALETTE[None, :n], span, axis=0)  # (T, N, 3)
        if recolour:
            colors[cfg.before :, found.a] = _new_colour(n, found.a)
        out["colors"].append(colors)
        for k in ("dispositions", "tremble", "hobbesian"):
            out[k].append(truth[k])
        p_a = truth["prob"][t_ev, found.a]  # B, the ego, acts by input: only A's action counts
        impossible = name in ("teleport", "forgive_acausal")
        fields["surprisal"].append(IMPOSSIBLE if impossible else -np.log(p_a))
        fields["condition"].append(names.index(name))
        fields["K"].append(found.K)
        fields["a"].append(found.a)
        fields["b"].append(found.b)
        fields["frame0"].append(f0)
    arrays = {k: np.stack(v) for k, v in out.items()}
    arrays["state"] = polis.observe(arrays, w.state_links)
    arrays["pixels"] = polis.pixels(w, arrays, arrays["colors"])  # (E, T, S, S, 3)
    polis.add_crops(w, arrays)
    change = arrays["pixels"][:, cfg.before].astype(np.float64)
    change -= arrays["pixels"][:, cfg.before - 1]
    dtypes = {"condition": np.int8, "K": np.int16, "a": np.int8, "b": np.int8,
              "surprisal": np.float32, "frame0": np.int32}  # fmt: skip
    for k, v in fields.items():
        arrays[f"item_{k}"] = np.asarray(v, dtype=dtypes[k])
    arrays["item_pixel_l2"] = np.sqrt((change**2).sum((1, 2, 3))).astype(np.float32)
    return arrays


def write_items_json(out: Path, cfg: ItemsConfig) -> list[str]:
    """`extra_files` callback: gather the item fields of every shard into items.json."""
    out = Path(out)
    cols = {k: [] for k in ("condition", "K", "a", "b", "surprisal", "pixel_l2")}
    i = 0
    while (out / shard_name(i)).is_dir():
        for k in cols:
            cols[k].append(np.load(out / shard_name(i) / f"item_{k}.npy", allow_pickle=False))
        i += 1
    cols = {k: np.concatenate(v) for k, v in cols.items()}
    names = cfg.names
    items = [
        {"item_id": e, "episode": e, "group_id": e // len(names), "condition": names[c],
         "label": CONDITIONS[names[c]][0], "t_star": cfg.before,
         "ideal_surprisal": round(float(cols["surprisal"][e]), 4),
         "pixel_l2_change": round(float(cols["pixel_l2"][e]), 2), "K": int(cols["K"][e]),
         "agent_a": int(cols["a"][e]), "agent_b": int(cols["b"][e])}
        for e, c in enumerate(cols["condition"].tolist())
    ]  # fmt: skip
    comparisons = [
        {"name": nm, "implausible": imp, "plausible": pl}
        for nm, imp, pl in comparisons_of(cfg.world.law)
    ]
    for k in KS:
        comparisons += [{**c, "name": f"{c['name']}_K{k}", "K": k}
                        for c in comparisons[:5] if c["name"] in ("M2", "Q")]  # fmt: skip
    doc = {
        "world": "polis",
        "law": cfg.world.law,
        "ego_is_b": True,
        "round_len": cfg.world.round_len,
        "conditions": {k: {"label": CONDITIONS[k][0], "doc": CONDITIONS[k][1]} for k in names},
        "comparisons": comparisons,
        "ideal_surprisal_violation": IMPOSSIBLE,
        "notes": "A comparison with a K key uses only the items with that K (dose-response); "
        "an M-group item's history is its K rounds (K * round_len frames before t*). B is the "
        "ego: its action at the event is a recorded input, and ideal_surprisal is A's part.",
        "items": items,
    }
    write_json_atomic(out / ITEMS_FILE, doc)
    return [ITEMS_FILE]


def read_items(root: str | Path) -> dict:
    """The verified items.json of an item set."""
    return open_dataset(root).read_json(ITEMS_FILE)
