"""Planning with the world model (issue 29): CEM over action sequences in latent space toward a
goal embedding, receding-horizon control, and closed-loop tasks in both worlds.

    from pwm.planning import CEMConfig, ActionSpace, cem, RecedingHorizon, LatentScore

cem.py: the optimiser (continuous CEM, categorical or exhaustive search for discrete parts);
latent.py: goal embeddings and the world-model cost; physics.py: goal reaching and pushing in the
physics simulator; polis.py: the ego's conduct in Polis; cli.py: `pwm plan`.
"""

from pwm.planning.cem import (
    PRESETS,
    ActionSpace,
    CEMConfig,
    Plan,
    PlanningError,
    RecedingHorizon,
    cem,
    sequences,
)
from pwm.planning.latent import LatentScore, check_goal, encode, goal_cost, goal_dims, tile_block

__all__ = [
    "PRESETS",
    "ActionSpace",
    "CEMConfig",
    "LatentScore",
    "Plan",
    "PlanningError",
    "RecedingHorizon",
    "cem",
    "check_goal",
    "encode",
    "goal_cost",
    "goal_dims",
    "sequences",
    "tile_block",
]
