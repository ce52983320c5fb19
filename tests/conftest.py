"""Shared fixtures: a toy dataset made once per test session (seconds)."""

import pytest

from data_gen.cli import main as data_main


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "toy"
    code = data_main(
        [
            "generate",
            "toy",
            "--out",
            str(out),
            "--episodes",
            "40",
            "--frames",
            "24",
            "--image-size",
            "32",
            "--seed",
            "0",
        ]
    )
    assert code == 0
    return out
