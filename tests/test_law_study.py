"""experiments/law_study.py: which datasets each variant trains and probes on."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import law_study  # noqa: E402


def fake_steps(monkeypatch, record):
    """law_study's dataset, fit and probe replaced by recorders: (made, fits, probes), made[name]
    = record(command, world, options); fits (name, configs, options); probes (items, options)."""
    made, fits, probes = {}, [], []

    def dataset(command, world, out, *options):
        made[out.name] = record(command, world, options)
        return out

    monkeypatch.setattr(law_study, "dataset", dataset)
    monkeypatch.setattr(law_study, "fit", lambda name, configs, steps, *o: fits.append(
        (name, configs, o)) or name)  # fmt: skip
    monkeypatch.setattr(law_study, "probe", lambda ckpt, items, out, *o: probes.append((items, o)))
    return made, fits, probes


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
    d = law_study.datasets(["reciprocity"], ["links", "physical-links", "physical"])
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


def test_goals_table_puts_the_observers_dose_slopes_beside_the_models(tmp_path):
    import json

    comp = {"paired_accuracy": 0.95, "ci": [0.9, 0.99]}
    key = "links-reciprocity / polis/reciprocity / polis/reciprocity"
    report = tmp_path / "REPORT.json"
    report.write_text(json.dumps({key: {"seeds": 2, "comparisons": {"R": comp}}}))
    probes = []
    for seed, (slope, low) in enumerate([(0.02, -0.01), (0.06, 0.01)]):
        dose = lambda s, lo: {"max": {"slope": s, "ci": [lo, s + 0.05]}}  # noqa: E731
        entry = {"world": "polis", "law": "reciprocity", "scorers": {
            "model": {"dose_slope": dose(slope, low), "comparisons": {
                "R": {"max": {"paired_accuracy": 0.9 + 0.1 * seed}}}},
            "frame_only": {"dose_slope": dose(0.29, 0.25)},
            "ideal_observer": {"dose_slope": dose(0.0, 0.0)}}}  # fmt: skip
        run = tmp_path / f"links-reciprocity-s{seed}"
        run.mkdir()
        # the consequence probe: seed 1's probe also has the one-step ratio (seed 0's predates it)
        conseq = {t: {"effect_ratio": 0.4 + 0.2 * seed} for t in ("distance_to_ego",
                                                                  "partner_defects")}  # fmt: skip
        if seed == 1:
            conseq["distance_to_ego"]["one_step_ratio"] = 0.1
        (run / "metrics.json").write_text(json.dumps({
            "model": {"name": "links-reciprocity"}, "items": [entry],
            "consequence": {"model": conseq}}))  # fmt: skip
        probes.append(run)
    header, _, row = law_study.goals(report, probes).splitlines()
    cells = dict(zip(header.split(" | "), row.split(" | "), strict=True))
    assert cells["R"] == "0.95 [0.90, 0.99] (0.90, 1.00) ✓"
    assert cells["dose slope (CI > 0)"] == "+0.040 (1/2)"  # the mean; one seed's CI above 0
    # with the rows stored, the report's CI over seeds (seeds, then groups) is given and marked
    g = json.loads(report.read_text())
    g[key]["dose_slope"] = {"ci": [0.01, 0.07]}
    report.write_text(json.dumps(g))
    header, _, row = law_study.goals(report, probes).splitlines()
    cells = dict(zip(header.split(" | "), row.split(" | "), strict=True))
    assert cells["dose slope (CI > 0)"] == "+0.040 [+0.010, +0.070] ✓ (1/2)"
    assert cells["dose slope: frame-only / ideal observer"] == "+0.290 / +0.000"
    assert cells["consequence: distance ratio"] == "0.50 (0.40, 0.60); one-step 0.10"
    assert cells["consequence: defection ratio"] == "0.50 (0.40, 0.60)"


def test_links_deep_stacks_the_deep_predictor_on_the_link_data(monkeypatch):
    fits = []
    monkeypatch.setattr(law_study, "dataset", lambda command, world, out, *o: out)
    monkeypatch.setattr(law_study, "fit", lambda name, configs, *a: fits.append((configs, a)))
    monkeypatch.setattr(law_study, "probe", lambda *a: None)
    d = law_study.datasets(["justice"], ["links-deep"])
    law_study.train_and_probe(d, "links-deep", "justice", 0)
    ((configs, args),) = fits
    assert configs[-1] == "experiments/law/deep.yaml"
    assert f"--data.path={d['justice-links']}" in args


def test_every_variant_s_diffs_exist_and_the_sixth_session_s_train_on_the_link_sets(monkeypatch):
    for variant, (_, diffs) in law_study.VARIANTS.items():
        for diff in diffs:
            assert (ROOT / diff).is_file(), (variant, diff)
    fits = []
    monkeypatch.setattr(law_study, "fit", lambda name, configs, steps, *o: fits.append(
        (name, configs, o)) or name)  # fmt: skip
    monkeypatch.setattr(law_study, "probe", lambda *a: None)
    d = {k: Path(k) for k in ("justice-links", "justice-links_items", "justice-links_consequence")}
    law_study.train_and_probe(d, "links-deep-events", "justice", 2)
    name, configs, opts = fits[0]
    assert name == "law-links-deep-events-justice-s2"
    law = law_study.LAW
    assert configs[-3:] == [law, "experiments/law/deep.yaml", "experiments/law/events.yaml"]
    assert "--data.path=justice-links" in opts and "--seed_everything=2" in opts


def test_a_train_only_variant_trains_on_its_own_set_and_is_probed_on_the_shared_items(
    monkeypatch,
):
    made, fits, probes = fake_steps(monkeypatch, lambda command, world, options: (command, options))
    d = law_study.datasets(["justice"], ["links-events-explore50"])
    command, options = made["justice-links-explore50"]
    # the link set's generation, plus the exploratory ego; no items of its own
    assert command == "generate" and options == (*made["justice-links"][1], "--ego-explore", "0.5")
    assert not any(k.startswith("justice-links-explore50_") for k in made)
    law_study.train_and_probe(d, "links-events-explore50", "justice", 1)
    ((name, configs, opts),) = fits
    assert name == "law-links-events-explore50-justice-s1"
    assert configs[-1] == "experiments/law/events.yaml"
    assert f"--data.path={d['justice-links-explore50']}" in opts
    ((items, popts),) = probes  # the shared link items and consequence set, as links-events
    assert items == [d["justice-links_items"]]
    assert popts[-2:] == ("--consequence", str(d["justice-links_consequence"]))
    # the exploratory ego alone: the same training set, the plain links recipe
    law_study.train_and_probe(d, "links-explore50", "justice", 0)
    name, configs, opts = fits[1]
    assert configs[-1] == law_study.LAW and f"--data.path={d['justice-links-explore50']}" in opts


def test_the_crops_variants_train_on_their_own_32_px_sets_in_both_worlds(monkeypatch):
    made, fits, probes = fake_steps(monkeypatch, lambda command, world, options: (world, options))
    d = law_study.datasets(["reciprocity"], ["crops", "physical-crops"])
    assert sorted(made) == ["physics-crops", "physics-crops_items", "reciprocity-crops",
                            "reciprocity-crops_consequence", "reciprocity-crops_items"]  # fmt: skip
    for _, options in made.values():  # the last --image-size wins: 32 px, 8 px crops
        assert options[-4:] == ("--image-size", "32", "--crops", "8")
    law_study.train_and_probe(d, "crops", "reciprocity", 0)
    law_study.train_and_probe(d, "physical-crops", "reciprocity", 0)
    assert [f[1][-1] for f in fits] == ["experiments/law/crops.yaml"] * 2
    assert f"--data.path={d['reciprocity-crops']}" in fits[0][2]
    assert f"--data.path={d['physics-crops']}" in fits[1][2]
    # the 2x2 from pixels: each model on its own world's items and across on the other's
    polis, physics = [d["reciprocity-crops_items"]], [d["physics-crops_items"]]
    assert [p[0] for p in probes] == [polis, physics, physics, polis]
    assert probes[1][1][-1] == probes[3][1][-1] == "--cross-world"
    assert "reciprocity" not in made
    assert "reciprocity" in law_study.datasets(["reciprocity"], ["round"])


def test_curate_copies_the_chosen_runs_probes_and_leaves_the_report(monkeypatch, tmp_path):
    import argparse
    import gzip

    probes, results = tmp_path / "probes", tmp_path / "results"
    monkeypatch.setattr(law_study, "PROBES", probes)
    monkeypatch.setattr(law_study, "RESULTS", results)
    for name in ("crops-reciprocity-s0", "crops-reciprocity-x-physics-s0", "links-reciprocity-s0"):
        (probes / name).mkdir(parents=True)
        (probes / name / "metrics.json").write_text(f'{{"run": "{name}"}}')
        (probes / name / "metrics.md").write_text(name)
    args = argparse.Namespace(part=["curate"], variants=["crops"], laws=["reciprocity"],
                              seeds=[0, 1])  # fmt: skip
    law_study.study(args)
    got = sorted(p.name for p in (results / "runs").iterdir())
    assert got == ["crops-reciprocity-s0", "crops-reciprocity-x-physics-s0"]  # no seed 1, no links
    run = results / "runs" / "crops-reciprocity-s0"
    assert (
        gzip.decompress((run / "metrics.json.gz").read_bytes())
        == b'{"run": "crops-reciprocity-s0"}'
    )
    assert (run / "metrics.md").read_text() == "crops-reciprocity-s0"
    assert not list(results.glob("REPORT*"))
