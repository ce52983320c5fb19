"""Where a crop model (data.observation crops) keeps or loses the exchange cue, layer by layer.

    python experiments/crop_cue.py CKPT [CKPT ...] [--data DIR] [--episodes 48] [--out FILE.json]

Per checkpoint and for a random network of the same architecture (seed 0): the held-out R² of
a ridge regression (λ 0.01, fit on the first half of the agent-steps, scored on the second) of
each agent's cue (the state's cue_c, cue_d) from the CNN's output, the encoder's token (after
the position, identity and MLP), the MLP projector's hidden layer (`hidden`, after its
BatchNorm and GELU; absent for `model.projector: linear`) and the agent's block of z (after the
projector: what the predictor sees and predicts). Read at the checkpoint's time step (every
`frame_skip`-th frame from frame 0, as the round-level models train) of the first `--episodes`
episodes of the first shard of `--data`. A screening
diagnostic for issue 28: `pwm probe`'s linear probe of the cues reads z on the item set.

`--pixels` also reads the cue from the crops' raw pixels (the same agent-steps and halves): a
ridge regression (`linear`) and a one-hidden-layer MLP (`mlp`: 256 GELU units, Adam 1e-3, 1,500
steps of 256, seed 0): how legible the cue is in the pixels at all, linearly and not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from pwm.checkpoint import CheckpointError, load_world_model
from pwm.data.format import DatasetError, open_dataset
from pwm.models.builder import architecture, build_world_model
from pwm.models.projector import Projector


def ridge_r2(f: np.ndarray, y: np.ndarray, lam: float = 1e-2) -> float:
    """Held-out R² (second half) of a ridge fit on the first half, centred on the first half."""
    n = len(f) // 2
    mf, my = f[:n].mean(0), y[:n].mean(0)
    a, b = f[:n] - mf, y[:n] - my
    w = np.linalg.solve(a.T @ a + lam * np.eye(f.shape[1]), a.T @ b)
    res = (y[n:] - my) - (f[n:] - mf) @ w
    return float(1 - (res**2).sum() / ((y[n:] - y[n:].mean(0)) ** 2).sum())


def layers(model, obs: torch.Tensor) -> dict[str, np.ndarray]:
    """(N, F) crops observation -> per agent-step features of the CNN, the token, the MLP
    projector's hidden layer (if it has one) and z."""
    with torch.no_grad():
        cnn, tokens = model.encoder.layers(obs)  # (N, k, width) each
        out = {"cnn": cnn, "token": tokens}
        proj = model.projector
        if isinstance(proj, Projector):  # Linear, BatchNorm, GELU | Linear
            out["hidden"] = proj.hidden(tokens)  # (N, k, hidden)
        out["z"] = proj(tokens)
    return {key: v.flatten(0, 1).double().numpy() for key, v in out.items()}


def mlp_r2(f: np.ndarray, y: np.ndarray, steps: int = 1500, seed: int = 0) -> float:
    """Held-out R² (second half) of a one-hidden-layer MLP fit on the first half (its weights
    and batches from `seed`; the global RNG is left as it was)."""
    g = torch.Generator().manual_seed(seed)
    x, t = torch.from_numpy(f).float(), torch.from_numpy(y).float()
    n = len(x) // 2
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.GELU(),
                                  torch.nn.Linear(256, t.shape[1]))  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(steps):
        i = torch.randint(0, n, (256,), generator=g)
        loss = ((net(x[i]) - t[i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        res = net(x[n:]) - t[n:]
    return float(1 - (res**2).sum() / ((t[n:] - t[n:].mean(0)) ** 2).sum())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ckpt", nargs="+", type=Path)
    p.add_argument("--data", type=Path, default=Path("data/law-study/reciprocity-crops"))
    p.add_argument("--episodes", type=int, default=48)
    p.add_argument("--out", type=Path)
    p.add_argument("--pixels", action="store_true", help="also read the cue from raw pixels")
    p.add_argument("--mlp-steps", type=int, default=1500, help="the pixel MLP's steps")
    args = p.parse_args(argv)
    try:
        return run(args)
    except (DatasetError, CheckpointError, OSError, ValueError) as e:
        print(f"crop_cue: error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    if args.episodes < 2:
        raise ValueError(f"--episodes must be >= 2 (half fits, half scores), got {args.episodes}")
    if args.mlp_steps < 1:
        raise ValueError(f"--mlp-steps must be >= 1, got {args.mlp_steps}")
    ds = open_dataset(args.data)
    if "crops" not in ds.names or "state" not in ds.names:
        raise ValueError(f"{args.data} has no 'crops' and 'state' arrays")
    loaded = [load_world_model(ckpt) for ckpt in args.ckpt]  # every one checked before any work
    for ckpt, (_, hp) in zip(args.ckpt, loaded, strict=True):
        if hp.get("observation") != "crops" or hp.get("obs_size") != ds.shape("crops")[1]:
            raise ValueError(f"{ckpt} is not a crops model of {args.data}'s crops")
    out = {}
    for ckpt, (model, hp) in zip(args.ckpt, loaded, strict=True):
        steps = slice(0, None, int(hp.get("frame_skip", 1) or 1))
        obs = np.asarray(ds.shards("crops")[0][: args.episodes, steps])
        state = np.asarray(ds.shards("state")[0][: args.episodes, steps])
        k = int(hp["objects"])
        cue = state.reshape(*state.shape[:2], k, -1)[..., 4:6].reshape(-1, 2)  # (N k, 2)
        x = torch.from_numpy(obs.reshape(-1, obs.shape[-1]))
        torch.manual_seed(0)
        rand = build_world_model(**architecture(hp)).eval()
        out[str(ckpt)] = {
            name: {key: round(ridge_r2(v, cue), 3) for key, v in layers(m.eval(), x).items()}
            for name, m in (("trained", model), ("random", rand))
        }
        print(ckpt, out[str(ckpt)])
    if args.pixels:  # the crops' pixels without the position, scaled as the encoder does
        pix = x.reshape(-1, x.shape[-1] // k)[:, 2:].double().numpy() / 127.5 - 1.0
        mlp = mlp_r2(pix, cue, args.mlp_steps)
        out["pixels"] = {"linear": round(ridge_r2(pix, cue), 3), "mlp": round(mlp, 3)}
        print("pixels", out["pixels"])
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
