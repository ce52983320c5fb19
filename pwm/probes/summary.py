"""The named tests of a `pwm report`, compactly: the study figure's data and a console summary.

A report's groups are (model name, model world, item world) -> the summary `report.summarise`
makes (REPORT.json holds the same, keyed "name / model world / item world"). The named tests of
each item world (NAMED) are the ones a reader looks for first: on physics items the violations,
on Polis items M2, R, M1, its mirror M1C, Q and the history effect HE = M2 + R - 1 (DESIGN 4.3).

- `figure_blocks`: one block per item world for `plots.named_tests` (one row per model).
- `brief`: a few lines for the end of `make demo`: the headline table (model x item world) and
  the named tests with their CIs, pass marks and the frame-only observer's accuracy.
"""

from __future__ import annotations

from pwm.probes.markdown import ci, fmt

NAMED = {
    "physics": ("teleport", "vanish", "pass_through", "acceleration", "selectivity"),
    "polis": ("M2", "R", "M1", "M1C", "Q", "HE"),
}
BRIEF = {"physics": ("teleport",), "polis": ("M2", "R", "M1", "Q", "HE")}
HE = "HE"  # the history effect, M2 + R - 1 (report.history_summary)


def parse_keys(report: dict) -> dict:
    """REPORT.json's "name / model world / item world" keys as tuples."""
    return {tuple(k.split(" / ")): v for k, v in report.items()}


def cell(summary: dict, test: str) -> dict | None:
    """One test of one group: value, CI, chance band, frame-only ceiling, pass, no-effect line."""
    if test == HE:
        h = summary.get("history_effect")
        if not h:
            return None
        return {"value": h["value"], "ci": h["ci"], "band": h["chance_band"], "null": 0.0,
                "ceiling": h["baselines"].get("frame_only"), "passed": h["pass"]}  # fmt: skip
    c = summary["comparisons"].get(test)
    if not c or c["paired_accuracy"] is None:
        return None
    return {"value": c["paired_accuracy"], "ci": c["ci"], "band": c["chance_band"], "null": 0.5,
            "ceiling": c["baselines"].get("frame_only"), "passed": c["pass"]}  # fmt: skip


def _base(world: str) -> str:
    return world.split("/")[0]  # polis/justice -> polis


def figure_blocks(summaries: dict) -> list[dict]:
    """`plots.named_tests` blocks: per item world with named tests, its models' rows."""
    worlds = sorted({k[2] for k in summaries if _base(k[2]) in NAMED})
    blocks = []
    for world in worlds:
        keys = [k for k in summaries if k[2] == world]
        names = [k[0] for k in keys]
        rows = [n if names.count(n) == 1 else f"{n} ({w})" for n, w, _ in keys]
        tests = {t: [cell(summaries[k], t) for k in keys] for t in NAMED[_base(world)]}
        tests = {("HE = M2 + R − 1" if t == HE else t): v for t, v in tests.items() if any(v)}
        if tests:
            blocks.append({"title": f"{world} items", "rows": rows, "tests": tests})
    return blocks


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return [line(header).rstrip(), *(line(r).rstrip() for r in rows)]


def brief(summaries: dict) -> list[str]:
    """The headline table and the named tests, one column per model (meant for a few models)."""
    models = list(dict.fromkeys((k[0], k[1]) for k in summaries))
    worlds = sorted({k[2] for k in summaries})
    heads = [[f"{n} ({w})", *(fmt(summaries.get((n, w, iw), {}).get("headline")) for iw in worlds)]
             for n, w in models]  # fmt: skip
    out = ["Headline, mean paired accuracy over each item world's headline tests:"]
    out += _table(["model", *(f"{w} items" for w in worlds)], heads)
    rows = []
    for world in worlds:
        for test in BRIEF.get(_base(world), ()):
            cells = [cell(summaries[k], test) if k in summaries else None
                     for k in ((n, w, world) for n, w in models)]  # fmt: skip
            if not any(cells):
                continue
            shown = [("–" if c is None else f"{fmt(c['value'])} {ci(c['ci'])}"
                      + ("*" if c["passed"] else " ")) for c in cells]  # fmt: skip
            ceiling = next((c["ceiling"] for c in cells if c and c["ceiling"] is not None), None)
            name = "HE = M2 + R − 1" if test == HE else test
            rows.append([name, world, *shown, fmt(ceiling)])
    if rows:
        out.append("Named tests, paired accuracy [95% CI] (*: passes, CI above 0.5 and above the "
                   "chance band):")  # fmt: skip
        out += _table(["test", "items", *(n for n, _ in models), "frame-only"], rows)
    verdicts = [(n, s["verdict"]) for (n, _, _), s in summaries.items() if s.get("verdict")]
    if verdicts:
        passed = lambda v: ", ".join(t for t, ok in v["tests"].items() if ok) or "none"  # noqa: E731
        out.append("Betrayal VoE (claimed only if M1, R and Q all pass): " + "; ".join(
            f"{n} {fmt(v['claimed'])} ({passed(v)} pass)" for n, v in verdicts))  # fmt: skip
    return out
