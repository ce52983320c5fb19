"""experiments/law_study.py: which datasets each variant trains and probes on."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import law_study  # noqa: E402


def test_a_data_variant_trains_and_probes_on_its_own_copy_of_the_laws_sets(monkeypatch):
    made, fits, probes = {}, [], []

    def dataset(command, world, out, *options):
        made[out.name] = options
        return out

    monkeypatch.setattr(law_study, "dataset", dataset)
    monkeypatch.setattr(law_study, "fit", lambda name, configs, steps, *o: fits.append(o) or name)
    monkeypatch.setattr(law_study, "probe", lambda ckpt, items, out, *o: probes.append((items, o)))
    d = law_study.datasets(["reciprocity"], ["round", "links"])
    plain = made["reciprocity"]
    assert made["reciprocity-links"] == (*plain, "--state-links")
    for kind in ("_items", "_consequence"):  # same seeds and options, plus the link
        assert made[f"reciprocity-links{kind}"] == (*made[f"reciprocity{kind}"], "--state-links")
        assert "--state-links" not in made[f"reciprocity{kind}"]
    law_study.train_and_probe(d, "links", "reciprocity", 0)
    assert f"--data.path={d['reciprocity-links']}" in fits[0]
    ((items, opts),) = probes
    assert items == [d["reciprocity-links_items"]]
    assert opts[-2:] == ("--consequence", str(d["reciprocity-links_consequence"]))
    law_study.train_and_probe(d, "round", "reciprocity", 0)  # the plain sets, and the 2x2
    assert f"--data.path={d['reciprocity']}" in fits[1]
    assert [p[0] for p in probes[1:]] == [[d["reciprocity_items"]], [d["physics_items"]]]
    assert "reciprocity-links" not in law_study.datasets(["reciprocity"], ["round"])
