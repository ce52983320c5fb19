"""Every "DESIGN x.y" that the code, configs and docs cite names a section of docs/design.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"DESIGN (\d+(?:\.\d+)?)")
HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", re.M)


def test_every_design_citation_resolves():
    sections = set(HEADING.findall((ROOT / "docs" / "design.md").read_text()))
    assert {"1", "3.3", "4.2", "5.4", "7"} <= sections
    files = [p for d in ("pwm", "data_gen", "experiments", "tests") for p in (ROOT / d).rglob("*")
             if p.suffix in (".py", ".md", ".yaml")] + [ROOT / "README.md"]  # fmt: skip
    missing = {
        f"{p.relative_to(ROOT)}: DESIGN {n}"
        for p in files
        for n in CITED.findall(p.read_text(errors="replace"))
        if n not in sections
    }
    assert not missing, sorted(missing)
