"""REPORT.md and the plots of the evolutionary analysis (experiments/evolution.py).

The verdicts are read off the numbers with one rule: an effect is called positive (negative)
when its 95% CI lies above (below) 0, and neutral when the CI covers 0.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from data_gen.agents import DISPOSITIONS  # noqa: E402

SHORT = ("recip", "generous", "grim", "coop", "defector", "machiav")
COLORS = ("#1b9e77", "#66a61e", "#7570b3", "#e6ab02", "#d95f02", "#e7298a")
PNG = {"metadata": {"Software": None}}  # no version stamp: same inputs, same bytes


def sign(value: float, half: float) -> str:
    return "+" if value - half > 0 else "-" if value + half < 0 else "0"


def mix(x, floor: float = 0.01) -> str:
    """A mix as 'recip 0.52, grim 0.31' (types above `floor`)."""
    x = np.asarray(x, np.float64)
    if not np.isfinite(x).all():
        return "degenerate (fixation probabilities underflow)"
    parts = [f"{SHORT[i]} {x[i]:.2f}" for i in np.argsort(-x) if x[i] > floor]
    return ", ".join(parts)


def fates(f: dict) -> str:
    """The bootstrap flows as one phrase."""
    n = f["civilized"]["replicates"]
    return f"over {n} episode-bootstrap games the flow ends cooperative / defective from " + (
        ", ".join(f"{k} {v['cooperative']:.0%} / {v['defective']:.0%}" for k, v in f.items())
    )


def pm(v: float, h: float) -> str:
    return f"{v:+.3f} ± {h:.3f}"


def law_section(law: str, r: dict, default: str) -> list[str]:
    g = r["games"][default]
    inv_c, inv_e = g["invasion_at_civilized"], g["invasion_at_civilized_end"]
    d, m = r["direct_invasion"], r["moran"]
    end = np.array(g["replicator_end"]["civilized"])
    invaders = [SHORT[i] for i in range(6) if sign(d["fitness"][i], d["halfwidth"][i]) == "+"]
    absent = [i for i in range(6) if end[i] < 0.01]
    enter = [SHORT[i] for i in absent if sign(inv_e["fitness"][i], inv_e["halfwidth"][i]) != "-"]
    lines = [f"### Law `{law}` (tremble {default})", ""]
    lines.append(
        "- Civilized mix a rest point? **No**: at it, the invasion fitness (A x)_i - x.A x is "
        + ", ".join(
            f"{SHORT[i]} {pm(inv_c['fitness'][i], inv_c['halfwidth'][i])}" for i in range(6)
        )
        + "."
    )
    lines.append(
        f"- Replicator flow from the civilized mix ends at: {mix(end)}; there, absent "
        f"types that can enter (CI not below 0): {', '.join(enter) or 'none'}."
    )
    lines.append(f"- Hobbesian mix flows to: {mix(g['replicator_end']['hobbesian'])}.")
    lines.append(f"- Robustness: {fates(g['bootstrap_flows'])}.")
    ad = g["invasion_at_all_defector"]
    signs = {sign(ad["fitness"][i], ad["halfwidth"][i]) for i in range(6) if i != 4}
    verdict = "No" if "+" in signs else "Yes" if signs == {"-"} else "Unresolved (a CI covers 0)"
    lines.append(
        f"- All-defector society stable (strict Nash)? **{verdict}**: "
        "mutants' invasion fitness A[j, D] - A[D, D] is "
        + ", ".join(f"{SHORT[i]} {pm(ad['fitness'][i], ad['halfwidth'][i])}" for i in range(4))
        + f", machiav {pm(ad['fitness'][5], ad['halfwidth'][5])}."
    )
    basin = ", ".join(
        f"{k.replace('reciprocator', 'recip')} {v:.2f}" for k, v in list(g["basins"].items())[:4]
    )
    lines.append(f"- Basins (share of {g['basin_samples']} uniform starts): {basin}.")
    lines.append(
        "- Direct invasion of one mutant into civilized episodes (payoff per round, mutant minus "
        "residents): "
        + ", ".join(f"{SHORT[i]} {pm(d['fitness'][i], d['halfwidth'][i])}" for i in range(6))
        + f"; control {pm(d['fitness'][6], d['halfwidth'][6])}. Invaders: "
        + (", ".join(invaders) or "none")
        + "."
    )
    wit = ", ".join(f"r={k}: {pm(v['fitness'], v['halfwidth'])}" for k, v in r["witness"].items())
    lines.append(f"- Machiavellian mutant vs witness radius: {wit}.")
    fx = m["fixation_into_civilized"]
    lines.append(
        f"- Moran (Z={m['population_size']}, beta={m['beta']}): P(one mutant's type takes over "
        "a civilized society) vs neutral: "
        + ", ".join(
            f"{SHORT[i]} {fx[n]['takes_over']:.3f}/{fx[n]['neutral']:.3f}"
            for i, n in enumerate(DISPOSITIONS)
        )
        + "."
    )
    lines.append(
        f"- Small-mutation-limit stationary: {mix(g['sml_stationary'], 0.005)}; with "
        f"mutation {m['mutation']}: mean mix {mix(m['stationary_mean'], 0.005)} "
        "(the `evolved` population). Small-mutation limit at larger populations: "
        + "; ".join(f"Z={n}: {mix(v, 0.005)}" for n, v in m["sml_stationary_by_size"].items())
        + "."
    )
    lo = r["long_lifetime"]
    lines.append(
        f"- Longer lifetime ({lo['frames']} frames): civilized flows to "
        f"{mix(lo['replicator_end']['civilized'])}; hobbesian to "
        f"{mix(lo['replicator_end']['hobbesian'])}."
    )
    return lines + [""]


def game_table(r: dict, tremble: str) -> list[str]:
    g = r["games"][tremble]
    a, h = np.array(g["A"]), np.array(g["halfwidth"])
    rows = ["| i \\ j | " + " | ".join(SHORT) + " |", "|---" * 7 + "|"]
    for i in range(6):
        rows.append(
            f"| {SHORT[i]} | " + " | ".join(f"{a[i, j]:.2f}±{h[i, j]:.2f}" for j in range(6)) + " |"
        )
    return rows


def write_report(doc: dict, curves: dict, out: Path) -> None:
    laws, s = doc["laws"], doc["settings"]
    default = str(doc["default_tremble"])
    plots(laws, curves, s, default, out)
    p = doc["provenance"]
    lines = [
        "# Evolutionary analysis of Polis",
        "",
        f"Made by `{p['command']}` at commit `{p['commit']}` in {p['seconds']:.0f} s.",
        "",
        "Game: A[i, j] = payoff per exchange round of an agent of type i from one agent of type "
        f"j, times N - 1 (data_gen/polis_game.py), {s['episodes']} uniform-mix episodes of "
        f"{s['frames']} frames per (law, tremble), payoffs T, R, P, S = {s['payoffs']}; 95% CIs "
        "clustered by episode. Dynamics: data_gen/evolution.py (egttools).",
        "",
    ]
    for law, r in laws.items():
        lines += law_section(law, r, default)
    lines += ["## Games", ""]
    for law, r in laws.items():
        for t, g in r["games"].items():
            lines.append(
                f"**{law}, tremble {t}** (max CI half-width {g['max_halfwidth']:.3f}, "
                f"{100 * g['max_halfwidth'] / g['range']:.1f}% of the matrix's range "
                f"{g['range']:.2f}; civilized flows to {mix(g['replicator_end']['civilized'])}"
                f"; hobbesian to {mix(g['replicator_end']['hobbesian'])}; "
                f"{fates(g['bootstrap_flows'])})"
            )
            lines += ["", *game_table(r, t), ""]
    lines += ["Plots: game.png, replicator.png, invasion.png, moran.png.", ""]
    (out / "REPORT.md").write_text("\n".join(lines))


def plots(laws: dict, curves: dict, s: dict, default: str, out: Path) -> None:
    names = list(laws)
    # the games
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.6), squeeze=False)
    for ax, law in zip(axes[0], names, strict=True):
        a, h = (
            np.array(laws[law]["games"][default]["A"]),
            np.array(laws[law]["games"][default]["halfwidth"]),
        )
        ax.imshow(a, cmap="viridis")
        for i in range(6):
            for j in range(6):
                ax.text(
                    j,
                    i,
                    f"{a[i, j]:.2f}\n±{h[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="w" if a[i, j] < a.max() * 0.6 else "k",
                )
        ax.set_xticks(range(6), SHORT, rotation=45)
        ax.set_yticks(range(6), SHORT)
        ax.set_title(f"{law}: payoff per round of row vs column")
    fig.tight_layout()
    fig.savefig(out / "game.png", dpi=110, **PNG)
    plt.close(fig)
    # replicator trajectories
    fig, axes = plt.subplots(2, len(names), figsize=(5.2 * len(names), 6.4), squeeze=False)
    for col, law in enumerate(names):
        c = curves[law]
        for row, start in enumerate(("civilized", "hobbesian")):
            ax = axes[row, col]
            ax.stackplot(c["times"], c["traj"][:, row].T, colors=COLORS, labels=SHORT)
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(0, c["times"][-1])
            ax.set_ylim(0, 1)
            ax.set_title(f"{law}: replicator from {start}")
            ax.set_xlabel("time (payoff per round units)")
    axes[0, 0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "replicator.png", dpi=110, **PNG)
    plt.close(fig)
    # invasion fitness
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(names)
    for k, law in enumerate(names):
        d, g = laws[law]["direct_invasion"], laws[law]["games"][default]["invasion_at_civilized"]
        x = np.arange(6) + (k - (len(names) - 1) / 2) * width
        ax.bar(
            x,
            d["fitness"][:6],
            width,
            yerr=d["halfwidth"][:6],
            label=f"{law}: direct",
            alpha=0.8,
            capsize=3,
        )
        ax.plot(
            x, g["fitness"], "k_", markersize=12, label="game (A x)_i - x.Ax" if k == 0 else None
        )
        radii = [float(v) for v in laws[law]["witness"]]
        w = [laws[law]["witness"][v] for v in laws[law]["witness"]]
        bx.errorbar(
            radii,
            [v["fitness"] for v in w],
            yerr=[v["halfwidth"] for v in w],
            marker="o",
            capsize=3,
            label=law,
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(6), SHORT)
    ax.set_ylabel("invasion fitness into civilized (per round)")
    ax.legend(fontsize=7)
    bx.axhline(0, color="grey", lw=0.8)
    bx.set_xlabel("witness radius")
    bx.set_ylabel("machiavellian invasion fitness")
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "invasion.png", dpi=110, **PNG)
    plt.close(fig)
    # Moran
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.8), squeeze=False)
    for ax, law in zip(axes[0], names, strict=True):
        c, m = curves[law], laws[law]["moran"]
        if "path" in c:
            ax.stackplot(c["generations"], c["path"].T, colors=COLORS, labels=SHORT)
            ax.set_xlabel("generations (Z steps)")
        else:
            ax.bar(SHORT, m["stationary_mean"], color=COLORS)
        ax.set_title(
            f"{law}: expected mix, Moran from {s['start']} "
            f"(Z={m['population_size']}, mu={m['mutation']})",
            fontsize=9,
        )
        ax.set_ylim(0, 1)
    axes[0, 0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "moran.png", dpi=110, **PNG)
    plt.close(fig)
