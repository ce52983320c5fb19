"""`pwm generate physics` and `pwm items physics`: options, validation and the run (DESIGN 6).

The common options (--out, --seed, --image-size, --workers, --shard, --num-shards, --overwrite,
--episodes/--frames or --items) come from data_gen/cli.py. `validate` builds the config and
checks it before the output directory is touched; `run` hands the world's `simulate` to the
sharded writer. Items: `--items` groups, each of len(CONDITIONS) episodes (one per condition),
so every condition gets `--items` pairs against its lawful continuation.
"""

from __future__ import annotations

import argparse
import functools

from data_gen.physics import PhysicsConfig, simulate
from data_gen.physics_items import CONDITIONS, ItemsConfig, simulate_items, write_items_json
from data_gen.render import state_layout
from data_gen.writer import generate_dataset, shard_sizes


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    d, di = PhysicsConfig(), ItemsConfig()
    parser.add_argument("--num-objects", type=int, default=d.num_objects, help="discs (ego = 0)")
    parser.add_argument("--radius", type=float, default=d.radius, help="disc radius, box units")
    parser.add_argument("--speed", type=float, default=d.speed, help="typical speed per frame")
    parser.add_argument("--force-max", type=float, default=d.force_max, help="ego force limit")
    parser.add_argument("--ego-drag", type=float, default=d.ego_drag, help="ego policy drag")
    parser.add_argument(
        "--ego-smoothness", type=float, default=d.ego_smoothness, help="ego OU correlation"
    )
    parser.add_argument(
        "--state-links",
        action="store_true",
        help="add Polis's per-object link columns to the state (all zero here), so that a "
        "model of Polis states with links can be probed on physics items and the reverse",
    )
    parser.add_argument(
        "--crops",
        type=int,
        default=d.crop_size,
        metavar="PX",
        help="also write the `crops` observation: per disc its position and the PX x PX pixels "
        "around it (0: none)",
    )
    if command == "items":
        parser.add_argument("--frames", type=int, default=di.physics.frames, help="frames per item")
        parser.add_argument("--t-star-min", type=int, default=di.t_star_min, help="earliest t*")
        parser.add_argument("--t-star-max", type=int, default=di.t_star_max, help="latest t*")
        parser.add_argument(
            "--teleport-min", type=float, default=di.teleport_min, help="min jump, box units"
        )
        parser.add_argument("--kick", type=float, default=di.kick, help="acceleration / speed")


def physics_config(args: argparse.Namespace) -> PhysicsConfig:
    return PhysicsConfig(
        num_objects=args.num_objects,
        radius=args.radius,
        image_size=args.image_size,
        frames=args.frames,
        speed=args.speed,
        force_max=args.force_max,
        ego_drag=args.ego_drag,
        ego_smoothness=args.ego_smoothness,
        state_links=args.state_links,
        crop_size=args.crops,
    )


def config(args: argparse.Namespace, command: str) -> PhysicsConfig | ItemsConfig:
    cfg = physics_config(args)
    if command == "items":
        keys = ("t_star_min", "t_star_max", "teleport_min", "kick")
        return ItemsConfig(physics=cfg, **{k: getattr(args, k) for k in keys})
    return cfg


def validate(args: argparse.Namespace, command: str) -> None:
    """Raise ValueError with a one-line message on bad options, before any work is done."""
    config(args, command).validate()


def size(args: argparse.Namespace, command: str) -> tuple[int, int]:
    """(episodes, frames per episode) the command writes."""
    if command == "items":
        return args.items * len(CONDITIONS), args.frames
    return args.episodes, args.frames


def run(args: argparse.Namespace, command: str) -> None:
    cfg = config(args, command)
    cfg.validate()
    common = dict(
        seed=args.seed, workers=args.workers, shard=args.shard, num_shards=args.num_shards
    )
    if command == "generate":
        meta = {"world": "physics", "kind": "dataset", "config": cfg.meta(), **_layout(cfg)}
        done = generate_dataset(
            args.out, functools.partial(simulate, cfg), meta, args.episodes, **common
        )
    else:
        per_shard = cfg.groups_per_shard * len(CONDITIONS)
        total = args.items * len(CONDITIONS)
        meta = {"world": "physics", "kind": "items", "config": cfg.meta(), **_layout(cfg.physics)}
        done = generate_dataset(
            args.out,
            functools.partial(simulate_items, cfg),
            meta,
            total,
            episodes_per_shard=per_shard,
            extra_files=functools.partial(
                write_items_json, shards=len(shard_sizes(total, per_shard))
            ),
            **common,
        )
    print(
        f"pwm {command} physics: {'complete' if done else 'shards written, others pending'}"
        f": {args.out}"
    )


def _layout(cfg: PhysicsConfig) -> dict:
    """What the arrays mean, for readers of the manifest."""
    return {
        "num_objects": cfg.num_objects,
        "state_layout": state_layout(cfg.num_objects, cfg.state_links),
        "action_dim": 2,
        "obs_shape": [cfg.image_size, cfg.image_size, 3],
        "crop_size": cfg.crop_size,
    }
