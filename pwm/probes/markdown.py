"""Markdown tables of a probe run (metrics.md); `pwm report` builds on the same helpers."""

from __future__ import annotations

import math

BASELINES = (
    "random_init",
    "pixel_diff",
    "any_defection",
    "last_move",
    "frame_only",
    "ideal_observer",
)


def fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–" if v is None or math.isnan(v) else ("∞" if v > 0 else "−∞")
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def ci(pair) -> str:
    return "–" if not pair else f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def items_section(entry: dict, primary: str, aggregators: list[str]) -> list[str]:
    """The tables of one item set: comparisons, overall metrics, time lock, linear probes."""
    sc = entry["scorers"]
    model = sc["model"]
    out = [
        f"## {entry['name']} ({entry['world']} items: {entry['num_items']} items, "
        f"{entry['num_groups']} groups; actions {entry['action_mode']}, H = {entry['context']})",
        "",
    ]
    if entry.get("law"):
        note = (f" **The model was trained on `{entry['model_law']}`: these items are of another "
                "law.**" if entry.get("law_mismatch") else "")  # fmt: skip
        out += [f"Law of the items: `{entry['law']}`.{note}", ""]
    if "verdict" in model:
        v = model["verdict"]
        tests = ", ".join(f"{t} {'pass' if ok else 'fail'}" for t, ok in v["tests"].items())
        out += [
            f"**Betrayal VoE claimed: {fmt(v['claimed'])}** ({tests}; aggregator {primary}).",
            "",
        ]
    if model.get("headline") is not None:
        out += [f"Headline (mean paired accuracy, {primary}): {fmt(model['headline'])}.", ""]
    others = [b for b in BASELINES if b in sc]
    header = ["comparison", "pairs", f"model {primary} [95% CI]", "chance band", "pass"]
    header += [f"model {a}" for a in aggregators if a != primary] + ["d_z", "rel.", "Wilcoxon p"]
    header += others
    rows = []
    for name, c in model["comparisons"].items():
        p = c[primary]
        row = [
            name,
            str(c["n_pairs"]),
            f"{fmt(p['paired_accuracy'])} {ci(p['ci'])}",
            ci(p["chance_band"]),
            fmt(p["pass"]),
        ]
        row += [fmt(c[a]["paired_accuracy"]) for a in aggregators if a != primary]
        row += [fmt(p["d_z"]), fmt(p["relative_surprise"]), fmt(p["wilcoxon_p"], 3)]
        row += [fmt(sc[b]["comparisons"][name][primary]["paired_accuracy"]) for b in others]
        rows.append(row)
    out += [
        "Paired accuracy (ties 0.5; quadruplets by the sum rule; `frame_only`: the Bayesian "
        "observer that sees what the model's context shows, the achievable ceiling):",
        "",
        *table(header, rows),
        "",
    ]
    out += history_lines(entry, primary)
    rows = [
        [
            k,
            *(fmt(s["auroc"][a]) for a in aggregators),
            *(fmt(s["spearman_ideal"][a]["rho"]) for a in aggregators),
            *(fmt(s["spearman_ideal_lawful"][a]["rho"]) for a in aggregators),
        ]
        for k, s in sc.items()
    ]
    header = [
        "scorer",
        *(f"AUROC {a}" for a in aggregators),
        *(f"rho ideal {a}" for a in aggregators),
        *(f"rho lawful {a}" for a in aggregators),
    ]
    out += ["Over all items:", "", *table(header, rows), ""]
    lock = model.get("time_lock", {})
    if lock:
        rows = [
            [n, fmt(t["pre_max_abs"], 4), fmt(t["locked"]), fmt(t["peak_latency"])]
            for n, t in lock.items()
        ]
        header = ["comparison", "max abs diff before t*", "time-locked", "peak latency (frames)"]
        out += ["Time lock (prefix-matched comparisons, model):", "", *table(header, rows), ""]
    probes = entry.get("linear_probes", {})
    if "targets" in probes:
        rows = [
            [n, t["metric"], fmt(t["model"]), fmt(t["random_init"]), fmt(t.get("majority"))]
            for n, t in probes["targets"].items()
        ]
        header = ["target", "metric", "model", "random init", "majority"]
        out += [f"Linear probes ({probes['source']}):", "", *table(header, rows), ""]
    return out


def history_lines(entry: dict, primary: str) -> list[str]:
    """The history effects HE = M2 + R - 1 and M1 + M1C - 1 (model, baselines) and the
    dose-response slope."""
    sc, out = entry["scorers"], []
    rows = []
    for k, s in sc.items():
        he, he1 = s.get("history_effect", {}).get(primary), s.get("history_effect_m1", {})
        he1 = he1.get(primary)
        if he:
            rows.append([k, f"{fmt(he['value'])} {ci(he['ci'])}", ci(he["chance_band"]),
                         fmt(he["pass"]), f"{fmt(he1['value'])} {ci(he1['ci'])}" if he1 else "–",
                         ci(he1["chance_band"]) if he1 else "–"])  # fmt: skip
    if rows:
        n = sc["model"].get("history_effect", {}).get(primary, {}).get("n_groups", "?")
        out += [
            f"History effects over {n} groups: HE = M2 + R − 1 (0 for every scorer that ignores "
            "the history, 1 for one that reads it) and M1 + M1C − 1 (the same interaction from "
            "the histories' side: 0 for a scorer that finds one history more surprising "
            "whatever follows):",
            "",
            *table(
                [
                    "scorer",
                    "HE [95% CI]",
                    "chance band",
                    "pass",
                    "M1 + M1C − 1 [95% CI]",
                    "chance band",
                ],
                rows,
            ),  # fmt: skip
            "",
        ]
    dose = entry.get("dose_K")
    slopes = {
        k: s["dose_slope"][primary] for k, s in sc.items() if s.get("dose_slope", {}).get(primary)
    }
    if dose is not None and (dose["inside"] or dose["outside"]):
        note = (f"K inside the context ({entry.get('context_frames')} frames): "
                f"{dose['inside'] or 'none'}; left out (history longer than the context): "
                f"{dose['outside'] or 'none'}.")  # fmt: skip
        rows = [[k, fmt(v["slope"], 3), ci(v["ci"]), ", ".join(fmt(x, 2) for x in v["mean_diff"])]
                for k, v in slopes.items()]  # fmt: skip
        out += [f"Dose-response: betrayal − trust→C score difference on log2 K. {note}", ""]
        if rows:
            out += [*table(["scorer", "slope", "95% CI", "mean difference per K"], rows), ""]
    return out


def consequence_section(res: dict) -> list[str]:
    """The consequence probe: per target, the effect of the ego's defection averaged over the
    horizon (predicted from the rollouts, true, decoded from the real frames), their ratio, the
    one-step predictions' ratio (each step from the real frames before it; probes from before it
    existed show a dash), the effect at the last step and the decoder's R^2 on real frames."""
    rows = []
    for who, block in res.items():
        for name in ("distance_to_ego", "trust_to_ego", "partner_defects"):
            b = block.get(name)
            if b is None:  # probes from before a target existed
                continue
            mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
            rows.append([who, name, fmt(mean(b["predicted_effect"]), 3),
                         fmt(mean(b["true_effect"]), 3), fmt(mean(b["encoded_effect"]), 3),
                         fmt(b.get("effect_ratio")), fmt(b.get("one_step_ratio")),
                         fmt(b["predicted_effect"][-1], 3),
                         fmt(b["true_effect"][-1], 3), fmt(b.get("decoder_r2"))])  # fmt: skip
    header = ["encoder", "target", "predicted D−C", "true D−C", "decoded from real frames",
              "ratio", "one-step ratio", "predicted, last step", "true, last step",
              "decoder R²"]  # fmt: skip
    horizon = next(iter(res.values())).get("horizon")
    return [f"## Consequence probe (the ego's defection vs cooperation; mean over {horizon} "
            "frames of rollout)", "", *table(header, rows), ""]  # fmt: skip


def probe_report(metrics: dict) -> str:
    m, cfg = metrics["model"], metrics["config"]
    lines = [
        f"# pwm probe: {m['name']}",
        "",
        f"Checkpoint `{m['checkpoint']}`: trained on {m['world']}, {m['observation']}, "
        f"history {m['history']}; window [t*, t* + {cfg['window']}], aggregators "
        f"{', '.join(cfg['aggregators'])} (primary {cfg['primary']}), "
        f"{cfg['chance_networks']} chance networks.",
        "",
    ]
    for entry in metrics["items"]:
        lines += items_section(entry, cfg["primary"], cfg["aggregators"])
    if metrics.get("consequence"):
        lines += consequence_section(metrics["consequence"])
    return "\n".join(lines)
