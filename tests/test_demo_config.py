"""`make demo`'s recipe: the config stack parses and is the one the README describes."""

from __future__ import annotations

import sys

import pytest
import yaml

sys.path.insert(0, "experiments")
import demo  # noqa: E402

from pwm.cli import main as pwm_main  # noqa: E402


@pytest.mark.parametrize("model", ["physical", "political"])
def test_demo_configs_parse_to_the_round_level_detached_target_object_model(
    model, capsys, monkeypatch
):
    monkeypatch.setattr(sys, "argv", ["pwm"])  # LightningCLI rewrites sys.argv
    configs = ("base", model, "law", "demo")
    argv = ["fit", *(a for c in configs for a in ("-c", f"experiments/{c}.yaml")), "--print_config"]
    with pytest.raises(SystemExit) as e:
        pwm_main(argv)
    assert e.value.code in (0, None)
    cfg = yaml.safe_load(capsys.readouterr().out)
    m = cfg["model"]
    assert (m["target"], m["regularizer"], m["objects"]) == ("stopgrad", "sigreg", 6)
    assert cfg["data"]["observation"] == "state"
    assert (cfg["data"]["frame_skip"], cfg["model"]["history"]) == (6, 8)  # a round per step
    # validation runs at multiples of val_check_interval: the last step must be one of them
    assert demo.STEPS % cfg["trainer"]["val_check_interval"] == 0
