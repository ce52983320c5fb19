"""`pwm generate polis` and `pwm items polis`: options, validation and the run (DESIGN 6).

The common options (--out, --seed, --image-size, --workers, --shard, --num-shards, --overwrite,
--episodes/--frames or --items) come from data_gen/cli.py. `validate` builds the config (all
checks live in PolisConfig / ItemsConfig) before the output directory is touched; `run` hands
the world's `simulate` to the sharded writer.

`generate` records the base rate of every event type (agents.EVENTS) among the executed
actions of the whole dataset, overall and per population, in the manifest (`base_rates`), and
prints them as one summary line. `items` writes `--items` groups of one episode per condition
of the world's law, so every condition gets `--items` items, and `items.json` (polis_items.py).

`items --consequence` writes a counterfactual set instead: `--items` pairs of episodes (the ego
cooperates / defects at one natural exchange) and `consequence.json`, the input of `pwm probe
--consequence` (see polis_consequence.py). It is an option of `items` rather than a command of
its own because it is one: an evaluation set replayed from natural runs, with the same crop and
search options (`--before`, `--after`, `--search-frames`), whose defaults it sets for itself
(an 18-frame probe horizon needs `--after` >= 18; the search runs default to training length).
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import asdict
from pathlib import Path

import numpy as np

from data_gen import polis
from data_gen.agents import DISPOSITIONS, EVENTS
from data_gen.polis_config import LAWS, POPULATION_NAMES, PolisConfig, parse_dispositions
from data_gen.polis_consequence import (
    ConsequenceConfig,
    simulate_consequence,
    write_consequence_json,
)
from data_gen.polis_items import ItemsConfig, simulate_items, write_items_json
from data_gen.render import state_layout
from data_gen.writer import generate_dataset
from pwm.data.format import shard_name

_WORLD = {  # option -> (config field, type, help)
    "--agents": ("n_agents", int, "agents per episode, 2..12 (agent 0 is the ego)"),
    "--population": ("population", str, "|".join(POPULATION_NAMES)),
    "--hobbesian-fraction": ("hobbesian_fraction", float, "mixture: P(episode is hobbesian)"),
    "--dispositions": (
        "dispositions",
        str,
        f"custom mix NAME=W,... over {', '.join(DISPOSITIONS)}",
    ),
    "--law": ("law", str, "|".join(LAWS) + ": what a reciprocator answers (DESIGN 3.3)"),
    "--round-len": ("round_len", int, "frames between exchange rounds"),
    "--radius": ("radius", float, "disc radius, box units"),
    "--exchange-radius": ("exchange_radius", float, "max centre distance of partners"),
    "--witness-radius": ("witness_radius", float, "witness distance to an exchange's midpoint"),
    "--tremble": ("tremble", float, "P(executed action flips)"),
    "--noisy-tremble": ("noisy_tremble", float, "tremble of noisy agents"),
    "--noisy-fraction": ("noisy_fraction", float, "fraction of noisy agents"),
    "--generosity": ("generosity", float, "P(generous reciprocator forgives)"),
    "--react-delay": ("react_delay", int, "rounds before trust changes the social force"),
    "--cue-hold": ("cue_hold", int, "frames an exchange's cues and link stay drawn"),
    "--ego-explore": ("ego_explore", float, "P(ego picks C/D at random)"),
    "--wander": ("wander", float, "scale of the agents' random walk force per frame"),
    "--crops": (
        "crop_size",
        int,
        "also write the `crops` observation: per agent its position and "
        "the PX x PX pixels around it (0: none)",
    ),
    "--payoff-t": ("payoff_t", float, "PD payoff T: my D against a C (temptation)"),
    "--payoff-r": ("payoff_r", float, "PD payoff R: both C (reward)"),
    "--payoff-p": ("payoff_p", float, "PD payoff P: both D (punishment)"),
    "--payoff-s": ("payoff_s", float, "PD payoff S: my C against a D (sucker)"),
}


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    d, di, dc = PolisConfig(), ItemsConfig(), ConsequenceConfig()
    for flag, (name, kind, text) in _WORLD.items():
        default = "" if name == "dispositions" else getattr(d, name)
        shown = "none: the population's mix" if name == "dispositions" else default
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default {shown})")
    parser.add_argument(
        "--state-links",
        action="store_true",
        help="the state also carries each agent's exchange link (a one-hot of its partner, "
        "link_0..link_{N-1}): the line the pixels draw between partners (default off)",
    )
    if command == "generate":
        parser.add_argument("--episodes-per-shard", type=int, default=64, help="shard size")
    else:
        for flag, text, name in (("--before", "frames before t*", "before"),
                                 ("--after", "frames from t* on", "after")):  # fmt: skip
            both = f"default {getattr(di, name)}, with --consequence {getattr(dc, name)}"
            parser.add_argument(flag, type=int, help=f"{text} ({both})")
        both = f"default {di.world.frames}, with --consequence {dc.world.frames}"
        parser.add_argument("--search-frames", type=int, help=f"length of searched runs ({both})")
        parser.add_argument(
            "--consequence",
            action="store_true",
            help="write --items counterfactual pairs (ego C / D) for `pwm probe --consequence`",
        )


def config(args: argparse.Namespace, command: str) -> PolisConfig | ItemsConfig | ConsequenceConfig:
    """The config the options describe; raises ValueError with a one-line message if invalid."""
    world = {
        name: getattr(args, flag[2:].replace("-", "_")) for flag, (name, _, _) in _WORLD.items()
    }
    world["state_links"] = args.state_links
    if world["dispositions"]:
        world["dispositions"] = parse_dispositions(world["dispositions"])
        world["population"] = "custom"
    else:
        world["dispositions"] = ()
    if command == "items":
        kind = ConsequenceConfig if args.consequence else ItemsConfig
        d = kind()
        cfg = PolisConfig(**world, frames=_given(args.search_frames, d.world.frames),
                          image_size=args.image_size)  # fmt: skip
        return kind(world=cfg, before=_given(args.before, d.before),
                    after=_given(args.after, d.after))  # fmt: skip
    cfg = PolisConfig(**world, frames=args.frames, image_size=args.image_size)
    if args.episodes_per_shard < 1:
        raise ValueError(f"--episodes-per-shard must be >= 1, got {args.episodes_per_shard}")
    return cfg


def _given(value, default):
    return default if value is None else value


def validate(args: argparse.Namespace, command: str) -> None:
    """Raise ValueError on bad options, before any work is done."""
    config(args, command)


def size(args: argparse.Namespace, command: str) -> tuple[int, int]:
    """(episodes, frames per episode) the command writes."""
    if command == "generate":
        return args.episodes, args.frames
    cfg = config(args, command)
    span = cfg.before + cfg.after
    if isinstance(cfg, ConsequenceConfig):
        return 2 * args.items, span
    return args.items * len(cfg.names), span


def run(args: argparse.Namespace, command: str) -> None:
    cfg = config(args, command)
    common = dict(
        seed=args.seed, workers=args.workers, shard=args.shard, num_shards=args.num_shards
    )
    if command == "generate":
        meta = {"world": "polis", "kind": "dataset", "config": asdict(cfg), **_layout(cfg)}
        done = generate_dataset(
            args.out,
            functools.partial(polis.simulate, cfg),
            meta,
            args.episodes,
            episodes_per_shard=args.episodes_per_shard,
            extra_files=functools.partial(_record_base_rates, meta=meta),
            **common,
        )
        if done:
            print(f"pwm generate polis ({cfg.population}): {summary(meta['base_rates'])}")
    elif isinstance(cfg, ConsequenceConfig):
        meta = {"world": "polis", "kind": "consequence", "config": asdict(cfg),
                **_layout(cfg.world), "frames": cfg.before + cfg.after}  # fmt: skip
        done = generate_dataset(
            args.out,
            functools.partial(simulate_consequence, cfg),
            meta,
            2 * args.items,
            episodes_per_shard=cfg.episodes_per_shard,
            extra_files=functools.partial(write_consequence_json, cfg=cfg),
            **common,
        )
    else:
        meta = {"world": "polis", "kind": "items", "config": asdict(cfg), **_layout(cfg.world)}
        meta["frames"] = cfg.before + cfg.after
        done = generate_dataset(
            args.out,
            functools.partial(simulate_items, cfg),
            meta,
            args.items * len(cfg.names),
            episodes_per_shard=cfg.episodes_per_shard,
            extra_files=functools.partial(write_items_json, cfg=cfg),
            **common,
        )
    state = "complete" if done else "shards written, others pending"
    print(f"pwm {command} polis: {state}: {args.out}")


def base_rates(event: np.ndarray, hobbesian: np.ndarray) -> dict:
    """Base rate of every event type among executed actions: overall and per population.

    event (E, T, N) int (-1: no exchange), hobbesian (E,) bool -> {population: {event: rate}}
    plus the number of executed actions `n` in each.
    """
    out = {}
    for name, mask in (("all", np.ones(len(event), bool)), ("civilized", ~hobbesian),
                       ("hobbesian", hobbesian)):  # fmt: skip
        ev = event[mask]
        ev = ev[ev >= 0]
        if len(ev) or name == "all":
            counts = np.bincount(ev, minlength=len(EVENTS))
            rates = counts / max(1, counts.sum())
            out[name] = {e: round(float(r), 4) for e, r in zip(EVENTS, rates, strict=True)}
            out[name]["n"] = int(counts.sum())
    return out


def summary(rates: dict) -> str:
    """One line: the base rates of each population present."""
    parts = []
    for pop, r in rates.items():
        if pop == "all" and len(rates) == 2:
            continue
        body = ", ".join(f"{e.replace('_', ' ')} {r[e]:.3f}" for e in EVENTS)
        parts.append(f"{pop} [{body}; {r['n']} actions]")
    return "base rates: " + " | ".join(parts)


def _record_base_rates(out: Path, meta: dict) -> list[str]:
    """`extra_files` hook: compute the dataset's base rates from its shards into `meta`."""
    events, hobbes = [], []
    i = 0
    while (Path(out) / shard_name(i)).is_dir():
        shard = Path(out) / shard_name(i)
        events.append(np.load(shard / "event.npy", allow_pickle=False))
        hobbes.append(np.load(shard / "hobbesian.npy", allow_pickle=False).astype(bool))
        i += 1
    meta["base_rates"] = base_rates(np.concatenate(events), np.concatenate(hobbes))
    return []


def _layout(cfg: PolisConfig) -> dict:
    """What the arrays mean, for readers of the manifest."""
    return {
        "num_objects": cfg.n_agents,
        "state_layout": state_layout(cfg.n_agents, cfg.state_links),
        "action_dim": 3,
        "action_layout": ["move_x", "move_y", "cd"],
        "obs_shape": [cfg.image_size, cfg.image_size, 3],
        "crop_size": cfg.crop_size,
        "events": list(EVENTS),
        "dispositions": list(DISPOSITIONS),
    }
