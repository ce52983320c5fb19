"""The probe figures (matplotlib, Agg backend), each drawn from a metrics.json block.

- `comparison_curves` (`pwm probe`): the standardised surprise around t* (mean +- SE), one
  titled panel per comparison with only its two sides, named tests first: a contrast such as
  M1 (trust_D vs provoked_D) is seen on its own, not inside an overlay of every condition.
- `dose_response`: paired accuracy (with its CI) against K, one line per K-restricted test.
- `probe_bars`: linear-probe R^2 / accuracy of the model next to the random-init encoder.
- `named_tests` (`pwm report`): the study figure, models x named tests, each a point with its
  95% CI over the chance band and beside the frame-only observer's accuracy (the ceiling a
  model with that context can reach); one row per model, so it reads at any number of models.
- `heatmap`: the 2x2 (model world x item world) headline for `pwm report` (small reports).
Every function writes one PNG and returns its path.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def dose_response(series: dict, aggregator: str, title: str, path: Path) -> Path:
    """series {test: {agg: {K, paired_accuracy, ci}}} -> accuracy against K (log2 axis)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, by_agg in series.items():
        s = by_agg[aggregator]
        k = np.asarray(s["K"], dtype=float)
        acc = np.asarray([np.nan if v is None else v for v in s["paired_accuracy"]], dtype=float)
        ci = np.asarray([[np.nan, np.nan] if c is None else c for c in s["ci"]], dtype=float)
        ax.errorbar(k, acc, yerr=np.abs(ci.T - acc), marker="o", capsize=3, label=name)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K (rounds of mutual cooperation)")
    ax.set_ylabel(f"paired accuracy ({aggregator})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def probe_bars(scores: dict, title: str, path: Path) -> Path:
    """scores {target: {model: value, random_init: value, metric}} -> grouped bars."""
    names = list(scores)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names)), 3.5))
    for j, who in enumerate(("model", "random_init")):
        vals = [scores[n].get(who) for n in names]
        vals = [np.nan if v is None else v for v in vals]
        ax.bar(x + (j - 0.5) * 0.38, vals, width=0.38, label=who)
    ax.set_xticks(x, [f"{n}\n({scores[n]['metric']})" for n in names], fontsize=7)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("held-out R^2 / accuracy")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def heatmap(values: np.ndarray, rows: list[str], cols: list[str], title: str, path: Path) -> Path:
    """values (len(rows), len(cols)) with NaN for missing cells."""
    fig, ax = plt.subplots(figsize=(3 + 1.6 * len(cols), 1.5 + 1.1 * len(rows)))
    im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(cols)), [f"{c}\nitems" for c in cols])
    ax.set_yticks(range(len(rows)), [f"{r}\nmodel" for r in rows])
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = values[i, j]
            ax.text(
                j,
                i,
                "n/a" if np.isnan(v) else f"{v:.2f}",
                ha="center",
                va="center",
                color="w" if np.isnan(v) or v < 0.6 else "k",
            )
    fig.colorbar(im, ax=ax, label="paired accuracy")
    ax.set_title(title)
    return _save(fig, path)


# the named comparisons of each world first, in this order; the others follow in items.json's
NAMED_FIRST = ("M2", "R", "M1", "M1C", "Q", "teleport", "vanish", "pass_through", "acceleration")


def comparison_curves(
    curves: dict,
    tau: list[int],
    comparisons: list[dict],
    accuracy: dict,
    window: int,
    title: str,
    path: Path,
    columns: int = 4,
) -> Path:
    """One panel per comparison: its implausible conditions (solid, warm colours) against its
    plausible ones (dashed, cool), mean +- SE of s~(t) over items, the event window shaded.

    comparisons [{name, implausible, plausible}] (items.json; dose-response K comparisons are
    left out); accuracy {name: (paired accuracy, [lo, hi]) or None} for the panel titles."""
    comps = [c for c in comparisons if c.get("K") is None and c["name"] in accuracy]
    rank = {n: i for i, n in enumerate(NAMED_FIRST)}
    comps.sort(key=lambda c: rank.get(c["name"], len(rank)))  # stable: items.json order after
    rows = -(-len(comps) // columns)
    cols = min(columns, len(comps))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(comps) :]:
        ax.set_visible(False)
    for ax, comp in zip(axes.flat, comps, strict=False):
        sides = [(c, "-", f"C{3 if j == 0 else 1}") for j, c in enumerate(comp["implausible"])]
        sides += [(c, "--", f"C{0 if j == 0 else 2}") for j, c in enumerate(comp["plausible"])]
        for cond, style, colour in sides:
            m = np.asarray(curves[cond]["mean"], dtype=float)
            se = np.asarray(curves[cond]["se"], dtype=float)
            ax.plot(tau, m, style, color=colour, lw=1.5, label=cond)
            ax.fill_between(tau, m - se, m + se, alpha=0.2, color=colour, lw=0)
        ax.axvspan(0, window, color="0.85", zorder=0)
        ax.axhline(0, color="0.5", lw=0.6)
        acc = accuracy[comp["name"]]
        score = (
            ""
            if acc is None
            else f"\npaired accuracy {acc[0]:.2f} [{acc[1][0]:.2f}, {acc[1][1]:.2f}]"
        )
        ax.set_title(f"{comp['name']}: {' + '.join(comp['implausible'])} vs "
                     f"{' + '.join(comp['plausible'])}{score}", fontsize=8)  # fmt: skip
        ax.legend(fontsize=7, frameon=False)
        ax.tick_params(labelsize=7)
    for i, ax in enumerate(axes.flat[: len(comps)]):
        if i + cols >= len(comps):  # the lowest panel of its column
            ax.set_xlabel("frames from t*", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("s~(t), mean +- SE", fontsize=8)
    fig.suptitle(f"{title}: surprise around the event (solid: implausible, dashed: plausible; "
                 f"grey: event window [t*, t* + {window}])", fontsize=9)  # fmt: skip
    return _save(fig, path)


def named_tests(blocks: list[dict], path: Path, title: str = "") -> Path:
    """The study figure: one block of panels per item world, one panel per test, one row per
    model. blocks [{title, rows: [label], tests: {test: [cell or None per row]}}], a cell
    {value, ci, band, ceiling, passed, null}: `band` the chance band (grey), `ceiling` the
    frame-only observer (black tick), `null` the no-effect line (0.5, or 0 for HE)."""
    width = max(len(b["tests"]) for b in blocks)
    heights = [1.0 + 0.24 * len(b["rows"]) for b in blocks]
    fig = plt.figure(figsize=(3.0 + 1.9 * width, sum(heights) + 0.4), layout="constrained")
    subs = fig.subfigures(len(blocks), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sub, block in zip(subs, blocks, strict=True):
        axes = sub.subplots(1, width, sharey=True, squeeze=False)[0]
        y = np.arange(len(block["rows"]))
        for ax in axes[len(block["tests"]) :]:
            ax.set_visible(False)
        for ax, (test, cells) in zip(axes, block["tests"].items(), strict=False):
            null = next((c["null"] for c in cells if c), 0.5)
            for k, c in enumerate(cells):
                if c is None:
                    continue
                if c.get("band"):  # at least 0.01 wide: a band of one value is still seen
                    lo, hi = c["band"][0], max(c["band"][1], c["band"][0] + 0.01)
                    ax.barh(k, hi - lo, left=lo, height=0.7, color="0.8", lw=0)
                if c.get("ci"):
                    ax.hlines(k, *c["ci"], color="C0", lw=1.6)
                face = "C0" if c.get("passed") else "white"
                ax.plot(c["value"], k, "o", ms=4.5, mfc=face, mec="C0", zorder=3)
                if c.get("ceiling") is not None:
                    ax.plot(c["ceiling"], k, "|", ms=9, mew=1.6, color="k", zorder=4)
            ax.axvline(null, color="0.4", lw=0.7, ls="--")
            ax.set_xlim((-1.05 if null == 0 else -0.03), 1.03)
            ax.set_title(test, fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
            ax.grid(axis="x", color="0.92", lw=0.6)
        axes[0].set_ylim(len(y) - 0.5, -0.5)
        axes[0].set_yticks(y, block["rows"], fontsize=7)
        sub.suptitle(block["title"], fontsize=9, x=0.01, ha="left", weight="bold")
    fig.suptitle(title or "paired accuracy, mean over seeds [95% CI] (filled: passes); grey: "
                 "chance band; |: frame-only observer; dashed: no effect", fontsize=9)  # fmt: skip
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
