"""`--help` of the data commands: every option explained with its default, and only the worlds
a command supports offered (issue 31)."""

from __future__ import annotations

import pytest

from data_gen.cli import build_parser


def _options(command: str, world: str):
    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "world")
    return sub.choices[world], sub


@pytest.mark.parametrize(
    "command, world",
    [("generate", "toy"), ("generate", "physics"), ("generate", "polis"), ("items", "physics"),
     ("items", "polis")],
)  # fmt: skip
def test_every_option_has_help_and_states_its_default(command, world):
    parser, _ = _options(command, world)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        flag = action.option_strings[0]
        assert action.help, f"pwm {command} {world} {flag} has no help"
        if action.default not in (None, False, "", []):
            assert "default" in formatter._expand_help(action), (flag, action.help)
    text = " ".join(parser.format_help().split())
    assert "--image-size PX side of the square frames, pixels (>= 16) (default: 64)" in text
    assert "--workers N worker processes (the bytes do not depend on it) (default: 1)" in text
    if command == "generate":
        assert "--episodes N episodes to simulate (default: 256)" in text
        assert "--frames T frames per episode (>= 2: a window needs two) (default: 64)" in text


def test_items_offers_only_worlds_that_make_items(capsys):
    _, sub = _options("items", "physics")
    assert set(sub.choices) == {"physics", "polis"}
    assert "toy" not in build_parser("items").format_help()
    assert "toy" in build_parser("generate").format_help()
