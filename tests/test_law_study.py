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
    (items, opts), (physics, _) = probes  # its own items, then the 2x2's physics cell
    assert items == [d["reciprocity-links_items"]] and physics == [d["physics-links_items"]]
    assert opts[-2:] == ("--consequence", str(d["reciprocity-links_consequence"]))
    law_study.train_and_probe(d, "round", "reciprocity", 0)  # the plain sets, and the 2x2
    assert f"--data.path={d['reciprocity']}" in fits[1]
    assert [p[0] for p in probes[2:]] == [[d["reciprocity_items"]], [d["physics_items"]]]
    assert "reciprocity-links" not in law_study.datasets(["reciprocity"], ["round"])


def test_links_2x2_the_physics_sets_carry_the_link_columns_in_both_cells(monkeypatch):
    made, fits, probes = {}, [], []

    def dataset(command, world, out, *options):
        made[out.name] = (world, options)
        return out

    monkeypatch.setattr(law_study, "dataset", dataset)
    monkeypatch.setattr(law_study, "fit", lambda name, configs, steps, *o: fits.append(o) or name)
    monkeypatch.setattr(law_study, "probe", lambda ckpt, items, out, *o: probes.append((items, o)))
    d = law_study.datasets(["reciprocity"], ["links", "physical-links"])
    for kind in ("", "_items"):  # the physics sets: the same options plus the (zero) link columns
        world, options = made[f"physics-links{kind}"]
        assert world == "physics" and options == (*made[f"physics{kind}"][1], "--state-links")
        assert "--state-links" not in made[f"physics{kind}"][1]
    law_study.train_and_probe(d, "physical-links", "reciprocity", 0)
    assert f"--data.path={d['physics-links']}" in fits[0]
    assert [p[0] for p in probes] == [[d["physics-links_items"]], [d["reciprocity-links_items"]]]
    assert probes[1][1][-1] == "--cross-world"
    law_study.train_and_probe(d, "links", "reciprocity", 0)  # the links model's 2x2 cell
    assert [p[0] for p in probes[2:]] == [[d["reciprocity-links_items"]],
                                          [d["physics-links_items"]]]  # fmt: skip
    law_study.train_and_probe(d, "physical", "reciprocity", 0)  # the plain physical model
    assert f"--data.path={d['physics']}" in fits[2]
    assert [p[0] for p in probes[4:]] == [[d["physics_items"]], [d["reciprocity_items"]]]
