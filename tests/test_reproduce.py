"""`make reproduce` (experiments/reproduce.py): which runs and probes each part asks for.

The steps themselves (runner.py: dataset, fit, probe) are replaced by recorders, so these tests
check the study's plan in milliseconds; the steps are exercised by the other tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import reproduce  # noqa: E402


@pytest.fixture
def calls(monkeypatch):
    log = {"fit": [], "probe": []}

    def fit(name, configs, steps, *overrides):
        log["fit"].append((name, configs, steps, overrides))
        return Path("runs") / name / "last.ckpt"

    def probe(ckpt, items, out, *options):
        log["probe"].append((ckpt, items, out, options))
        return out

    monkeypatch.setattr(reproduce, "fit", fit)
    monkeypatch.setattr(reproduce, "probe", probe)
    monkeypatch.setattr(reproduce, "dataset", lambda command, world, out, *o: out)
    monkeypatch.setattr(reproduce, "report", lambda command: log.setdefault("report", command))
    return log


def study(monkeypatch, *argv):
    monkeypatch.setattr(sys, "argv", ["reproduce.py", *argv])
    reproduce.main()


def test_main_part_trains_every_world_observation_and_seed(calls, monkeypatch):
    study(monkeypatch, "--part", "main")
    names = sorted(name for name, *_ in calls["fit"])
    assert names == sorted(
        f"study-{m}-{o}-sigreg-s{s}"
        for m in ("physical", "political")
        for o in ("pixels", "state")
        for s in (0, 1, 2)
    )
    for name, configs, steps, overrides in calls["fit"]:
        seed = name.rsplit("-s", 1)[1]
        assert steps == reproduce.STEPS and configs[-1] == reproduce.STUDY
        assert f"--seed_everything={seed}" in overrides and f"--data.split_seed={seed}" in overrides
    assert "report" not in calls


def test_state_models_are_probed_in_their_own_world_only(calls, monkeypatch):
    """Only pixel models get the other world's items (a physics state's cue columns are zero in
    training, so a state model's reading of Polis cues would be out of distribution)."""
    study(monkeypatch, "--part", "main", "--seeds", "0")
    by_out = {out.name: (items, options) for _, items, out, options in calls["probe"]}
    assert set(by_out) == {
        "physical-pixels-sigreg-s0",
        "physical-pixels-sigreg-x-polis-s0",
        "political-pixels-sigreg-s0",
        "political-pixels-sigreg-x-physics-s0",
        "physical-state-sigreg-s0",
        "political-state-sigreg-s0",
    }
    items, options = by_out["physical-pixels-sigreg-x-polis-s0"]
    assert items == [reproduce.DATA / "polis_items"] and "--cross-world" in options
    items, options = by_out["political-state-sigreg-s0"]
    assert "--cross-world" not in options and "--consequence" in options
    assert options.count("--probe-data") == 1


def test_variants_select_ablations_and_curricula(calls, monkeypatch):
    study(monkeypatch, "--part", "ablations", "curricula", "--seeds", "0", "--obs", "state",
          "--worlds", "polis", "--variants", "frozen", "immunization")  # fmt: skip
    fits = {name: configs for name, configs, _, _ in calls["fit"]}
    assert set(fits) == {"study-political-state-frozen-s0", "study-political-state-immunization-s0"}
    assert fits["study-political-state-frozen-s0"][-1] == "experiments/ablations/frozen.yaml"


def test_state_only_variants_are_skipped_with_pixels(calls, monkeypatch):
    study(monkeypatch, "--part", "ablations", "--seeds", "0", "--worlds", "polis",
          "--variants", "oracle")  # fmt: skip
    fits = {name: configs for name, configs, _, _ in calls["fit"]}
    assert set(fits) == {"study-political-state-oracle-s0"}
    assert "experiments/ablations/oracle.yaml" in fits["study-political-state-oracle-s0"]


def test_ablations_and_curricula(calls, monkeypatch):
    study(monkeypatch, "--part", "ablations", "curricula", "--seeds", "1", "--obs", "state")
    fits = {name: (configs, overrides) for name, configs, _, overrides in calls["fit"]}
    assert fits["study-physical-state-none-s1"][0][-1] == "experiments/ablations/none.yaml"
    assert fits["study-political-state-ema-s1"][0][-1] == "experiments/ablations/ema.yaml"
    assert fits["study-political-state-stopgrad-s1"][0][-1] == "experiments/ablations/stopgrad.yaml"
    configs, overrides = fits["study-political-state-immunization-s1"]
    ramp = "experiments/curricula/immunization-6000.yaml"  # the ramp scaled to 6,000 steps
    assert configs[-2:] == ["experiments/curricula/immunization.yaml", ramp]
    assert f"--data.path={reproduce.DATA / 'polis_mixture'}" in overrides
    assert ramp not in fits["study-political-state-mixed-s1"][0]
    # a run's command line holds only its data, observation and seed: the rest is config files
    for _, overrides in fits.values():
        assert {o.split("=")[0] for o in overrides} == {
            "--data.path",
            "--data.observation",
            "--seed_everything",
            "--data.split_seed",
        }
    hobbesian = [
        o
        for _, items, o, _ in calls["probe"]
        if items == [reproduce.DATA / "polis_items_hobbesian"]
    ]
    # state: each schedule with the one-vector and with the object-centric detached-target model
    assert len(hobbesian) == len(reproduce.CURRICULA) + len(reproduce.OBJECT_CURRICULA)


def test_object_centric_curricula_detach_the_target_and_keep_the_schedule(calls, monkeypatch):
    study(monkeypatch, "--part", "curricula", "--seeds", "0", "--variants",
          *reproduce.OBJECT_CURRICULA)  # fmt: skip
    fits = {name: (configs, overrides) for name, configs, _, overrides in calls["fit"]}
    assert set(fits) == {f"study-political-state-objects-sg-{c}-s0" for c in reproduce.CURRICULA}
    for schedule in reproduce.CURRICULA:
        configs, overrides = fits[f"study-political-state-objects-sg-{schedule}-s0"]
        # the schedule's configs after the model's: its data keys are the last word
        model = ["experiments/objects.yaml", "experiments/ablations/stopgrad.yaml"]
        assert configs[3:] == [*model, *reproduce.CURRICULA[schedule]]
        assert "--data.observation=state" in overrides
        assert f"--data.path={reproduce.DATA / 'polis_mixture'}" in overrides
    by_out = {out.name: options for _, _, out, options in calls["probe"]}
    assert "--consequence" in by_out["political-state-objects-sg-mixed-s0"]
    assert "political-state-objects-sg-mixed-x-hobbesian-s0" in by_out
    calls["fit"].clear()
    study(monkeypatch, "--part", "curricula", "--obs", "pixels", "--variants",
          *reproduce.OBJECT_CURRICULA)  # fmt: skip
    assert calls["fit"] == []  # state only


def test_report_part_alone(calls, monkeypatch):
    study(monkeypatch, "--part", "report")
    assert calls["fit"] == [] and "--part report" in calls["report"]


def test_unknown_part_is_refused(monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        study(monkeypatch, "--part", "everything")
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_legibility_trains_on_cues_held_for_the_round(calls, monkeypatch):
    study(monkeypatch, "--part", "legibility", "--seeds", "0", "--obs", "state")
    [(name, _, _, overrides)] = calls["fit"]
    assert name == "study-political-state-hold6-s0"
    assert f"--data.path={reproduce.DATA / 'polis_hold6'}" in overrides
    [(_, items, _, _)] = calls["probe"]
    assert items == [reproduce.DATA / "polis_items_hold6"]


def test_goals_table_from_a_report_and_its_probes(tmp_path):
    comp = {"paired_accuracy": 0.75, "ci": [0.6, 0.9]}
    report = tmp_path / "REPORT.json"
    report.write_text(json.dumps({"m / polis / polis": {"seeds": 2, "comparisons": {"M1": comp}}}))
    probes = []
    lawful = [[1.0, 2.0, 3.0, 9.0], [1.0, 3.0, 2.0, 9.0]]  # model scores; the last: the teleport
    for seed, (rho, p, accs) in enumerate([(0.2, 1e-3, [0.5, 0.6, 0.7]), (0.4, 1e-5, [0.5] * 3)]):
        entry = {
            "world": "polis",
            "scorers": {"model": {
                "spearman_ideal": {"max": {"rho": rho, "p": p}},
                "dose_response": {"M2": {"max": {"K": [1, 2, 4], "paired_accuracy": accs}}},
            }},
            "linear_probes": {"targets": {"cues": {"model": 0.1 * seed, "random_init": 0.8}}},
            # lawful rho from the per-item scores, the teleport (1e9) left out: -1, then -0.5
            "per_item": {"scores": {"model": {"max": lawful[seed]},
                                    "ideal_observer": {"max": [3.0, 2.0, 1.0, 1e9]}}},
        }  # fmt: skip
        run = tmp_path / f"m-s{seed}"
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps({"model": {"name": "m"}, "items": [entry]}))
        probes.append(run)
    row = reproduce.goals(report, probes).splitlines()[2].split(" | ")
    assert row[:3] == ["| m", "polis", "2"] and row[3] == "–"
    assert row[6] == "0.75 [0.60, 0.90]"  # M1
    assert row[8] == "0.30 (p ≤ 1e-03)"  # mean rho, the largest p
    assert row[9] == "-0.75 (p 0e+00 to 7e-01)"  # lawful rho: mean of -1 and -0.5, range of p
    assert row[10] == "+0.050"  # slopes 0.1 and 0 per doubling of K
    assert row[11] == "0.05 (0.80)" and row[12] == "– |"


def test_lawful_rho_is_undefined_where_every_lawful_item_ties():
    """Physics items: every lawful event has ideal surprisal 0, so rho is undefined (NaN)."""
    scores = {"model": {"max": [1.0, 2.0, 5.0]}, "ideal_observer": {"max": [0.0, 0.0, 1e9]}}
    assert reproduce.lawful_rho({"per_item": {"scores": scores}}) is None


def test_objects_part_trains_the_object_centric_model_on_state_only(calls, monkeypatch):
    study(monkeypatch, "--part", "objects", "--seeds", "0")
    fits = {name: (configs, overrides) for name, configs, _, overrides in calls["fit"]}
    assert set(fits) == {
        f"study-{m}-state-{v}-s0"
        for m in ("physical", "political")
        for v in (
            "objects",
            "objects-frozen",
            "objects-oracle",
            "objects-sg",
            "objects-h18",
            "objects-oracle-h18",
            "objects-sg-h18",
        )
    }
    for configs, overrides in fits.values():
        assert configs[3] == "experiments/objects.yaml" and "--data.observation=state" in overrides
    diff = {v: fits[f"study-political-state-{v}-s0"][0][4:] for v in reproduce.OBJECTS}
    assert diff["objects"] == []
    assert diff["objects-oracle"] == ["experiments/ablations/oracle.yaml"]
    assert diff["objects-sg"] == ["experiments/ablations/stopgrad.yaml"]
    # history 18 (windows of 19 frames) after the target's diff
    assert diff["objects-h18"] == ["experiments/objects/h18.yaml"]
    assert diff["objects-oracle-h18"] == [*diff["objects-oracle"], *diff["objects-h18"]]
    assert diff["objects-sg-h18"] == [*diff["objects-sg"], *diff["objects-h18"]]
    by_out = {out.name: options for _, _, out, options in calls["probe"]}
    assert "--consequence" in by_out["political-state-objects-s0"]
    assert "--consequence" in by_out["political-state-objects-sg-s0"]
    assert "--consequence" not in by_out["political-state-objects-h18-s0"]  # no room (H 18)
    assert "--consequence" not in by_out["political-state-objects-sg-h18-s0"]
    calls["fit"].clear()
    study(monkeypatch, "--part", "objects", "--obs", "pixels")
    assert calls["fit"] == []


def test_report_restores_committed_probes_and_keeps_local_ones(tmp_path, monkeypatch):
    """A fresh clone has no runs/: the report step unpacks the committed probe copies first, so
    it covers the whole study, never replaces a local probe, and is byte-exact."""
    import gzip

    results, probes = tmp_path / "results", tmp_path / "probes"
    monkeypatch.setattr(reproduce, "RESULTS", results)
    monkeypatch.setattr(reproduce, "PROBES", probes)
    for name, body in (("a-s0", b'{"a": 1}'), ("b-s0", b'{"b": 2}')):
        (results / "runs" / name).mkdir(parents=True)
        (results / "runs" / name / "metrics.json.gz").write_bytes(gzip.compress(body))
        (results / "runs" / name / "metrics.md").write_text(f"# {name}\n")
    (probes / "b-s0").mkdir(parents=True)
    (probes / "b-s0" / "metrics.json").write_bytes(b'{"b": "re-probed"}')
    assert reproduce.restore() == ["a-s0"]
    assert (probes / "a-s0" / "metrics.json").read_bytes() == b'{"a": 1}'
    assert (probes / "a-s0" / "metrics.md").read_text() == "# a-s0\n"
    assert not list(probes.glob("*/*.gz")) and not list(probes.glob("*/*.tmp"))
    assert (probes / "b-s0" / "metrics.json").read_bytes() == b'{"b": "re-probed"}'
    assert reproduce.restore() == []  # idempotent


VARIANT_TABLES = ("ABLATIONS", "OBJECTS", "CURRICULA", "OBJECT_CURRICULA")


def test_every_variant_is_config_files_that_exist():
    for table in VARIANT_TABLES:
        for variant, configs in getattr(reproduce, table).items():
            for c in configs:
                assert (ROOT / c).is_file(), f"{table}[{variant!r}]: {c} is missing"


def test_a_composed_variant_resolves_to_what_its_name_says(capsys, monkeypatch):
    """objects-oracle-h18: objects.yaml, then the oracle ablation, then history 18."""
    from pwm.cli import main as pwm_main

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["pwm"])  # LightningCLI rewrites sys.argv
    configs = [reproduce.BASE, "experiments/political.yaml", reproduce.STUDY,
               *reproduce.OBJECTS["objects-oracle-h18"]]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        pwm_main(["fit", *[a for c in configs for a in ("-c", c)], "--print_config"])
    assert e.value.code in (0, None)
    cfg = yaml.safe_load(capsys.readouterr().out)
    m, d = cfg["model"], cfg["data"]
    assert (m["objects"], m["target"], m["regularizer"], m["history"]) == (6, "oracle", "none", 18)
    assert (d["window"], d["observation"]) == (19, "state")
