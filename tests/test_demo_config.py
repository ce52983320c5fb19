"""`make demo`'s recipe: the config stack parses and is the one the README describes."""

from __future__ import annotations

import sys

import pytest
import yaml

sys.path.insert(0, "experiments")
import demo  # noqa: E402

from pwm.cli import main as pwm_main  # noqa: E402


@pytest.mark.parametrize("model", ["physical", "political"])
def test_demo_configs_parse_to_the_detached_target_object_model(model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pwm"])  # LightningCLI rewrites sys.argv
    argv = ["fit", "-c", "experiments/base.yaml", "-c", f"experiments/{model}.yaml",
            "-c", "experiments/demo.yaml", "--print_config"]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        pwm_main(argv)
    assert e.value.code in (0, None)
    cfg = yaml.safe_load(capsys.readouterr().out)
    m = cfg["model"]
    assert (m["target"], m["regularizer"], m["objects"]) == ("stopgrad", "sigreg", 6)
    assert cfg["data"]["observation"] == "state"
    # validation runs at multiples of val_check_interval: the last step must be one of them
    assert demo.STEPS % cfg["trainer"]["val_check_interval"] == 0
