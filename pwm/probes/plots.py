"""The probe figures (matplotlib, Agg backend), each drawn from a metrics.json block.

- `surprise_curves`: mean +- SE of the standardised surprise around t* per condition.
- `dose_response`: paired accuracy (with its CI) against K, one line per K-restricted test.
- `probe_bars`: linear-probe R^2 / accuracy of the model next to the random-init encoder.
- `heatmap`: the 2x2 (model world x item world) headline for `pwm report`.
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


def surprise_curves(curves: dict, tau: list[int], title: str, path: Path, per_panel: int = 6):
    """curves {condition: {mean, se}} over relative frames `tau`; `per_panel` conditions a panel."""
    names = list(curves)
    chunks = [names[i : i + per_panel] for i in range(0, len(names), per_panel)]
    fig, axes = plt.subplots(
        1, len(chunks), figsize=(6 * len(chunks), 4), sharey=True, squeeze=False
    )
    for ax, chunk in zip(axes[0], chunks, strict=True):
        for j, cond in enumerate(chunk):
            m = np.asarray(curves[cond]["mean"], dtype=float)
            se = np.asarray(curves[cond]["se"], dtype=float)
            ax.plot(tau, m, label=cond, lw=1.4, color=f"C{j}")
            ax.fill_between(tau, m - se, m + se, alpha=0.2, color=f"C{j}")
        ax.axvline(0, color="k", lw=0.8, ls="--")
        ax.set_xlabel("frames from t*")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("standardised surprise s~(t), mean +- SE")
    fig.suptitle(title)
    return _save(fig, path)


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
