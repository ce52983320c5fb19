"""Planning: time per decision of CEM in a world model's latent space (issue 29).

    python experiments/benchmarks/planning.py [--quick] [--threads N] [--json PATH]

One decision = one receding-horizon plan (pwm.planning.cem + LatentScore): CEM's iterations, each
an autoregressive rollout of every candidate through the predictor from the encoded current
observation, scored against a goal embedding. Models are randomly initialised (the time does not
depend on the weights): the CPU preset's architecture (experiments/law.yaml: state, 6 object
tokens, z 96-d, a 2-layer 128-wide predictor; the physics action block of 6 frames x 2), planned
at pwm.planning.PRESETS["cpu"] (64 samples, top 8, 5 iterations, horizon 3) for one episode
(batch 1) and amortised over 50 episodes planned together, and once at LeWM's budget
(PRESETS["lewm"]: 300, 30, 30, 5; one repeat, skipped with --quick). On a GPU also LeWM's size
(experiments/lewm_reference.yaml: ViT-tiny 224 px, 6-layer predictor, frame skip 5 of 2-d
actions) at LeWM's budget, timed with CUDA synchronisation; without CUDA that part says so.
Target: <= 1 s per decision at the CPU preset on this CPU (batch 1).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import finish, load, median_time, table

from pwm.models import build_world_model
from pwm.planning import PRESETS, ActionSpace, CEMConfig, LatentScore, cem, tile_block

CPU_MODEL = dict(
    observation="state", obs_size=36, action_dim=12, window=9, history=8, embed_dim=96,
    projector_hidden=256, objects=6, encoder={"width": 64, "depth": 2},
    predictor={"width": 128, "depth": 2, "heads": 4, "head_dim": 32, "mlp_dim": 512},
)  # fmt: skip
LEWM_MODEL = dict(
    observation="pixels", obs_size=224, action_dim=10, window=4, history=3, embed_dim=192,
    projector_hidden=2048, encoder={"patch_size": 14, "width": 192, "depth": 12, "heads": 3},
    predictor={"width": 192, "depth": 6, "heads": 16, "head_dim": 64, "mlp_dim": 2048},
)  # fmt: skip


def decision(model, obs, cfg: CEMConfig, skip: int, device="cpu"):
    """A closure making one decision for a batch of observations (B, *obs_shape)."""
    A = model.predictor.action_dim
    space = ActionSpace(low=(-1.0,) * (A // skip), high=(1.0,) * (A // skip))
    gen = torch.Generator().manual_seed(0)

    def run():
        with torch.no_grad():
            z = model.encode(obs[:, None].to(device))  # (B, 1, D)
            goal = model.encode(obs[:, None].to(device))[:, 0]
        B = len(obs)
        score = LatentScore(model, z, torch.zeros(B, 0, A, device=device), goal,
                            lambda u, k: tile_block(u, skip))  # fmt: skip
        plan = cem(score, space, cfg, B, gen)
        if device != "cpu":
            torch.cuda.synchronize()
        return plan

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, no LeWM budget on CPU")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", help="write the result here (for run_all.py)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = load()
    repeats = 2 if args.quick else args.repeats
    torch.manual_seed(0)
    model = build_world_model(**CPU_MODEL).eval()
    cpu = PRESETS["cpu"]
    rows, data = [], {"threads": torch.get_num_threads(), "cpu_preset": cpu.meta()}
    obs1 = torch.rand(1, 36)
    t1 = median_time(decision(model, obs1, cpu, 6), repeats)
    obs50 = torch.rand(50, 36)
    t50 = median_time(decision(model, obs50, cpu, 6), max(1, repeats // 2)) / 50
    data |= {"cpu_batch1_s": t1, "cpu_batch50_s_per_episode": t50}
    c = cpu
    budget = f"{c.samples}/{c.topk}/{c.iterations}/{c.horizon}"
    rows.append(["CPU preset model", f"cpu ({budget})", 1, f"{t1:.3f}"])
    rows.append(["CPU preset model", f"cpu ({budget})", "50 (per episode)", f"{t50:.3f}"])
    lewm = PRESETS["lewm"]
    lb = f"{lewm.samples}/{lewm.topk}/{lewm.iterations}/{lewm.horizon}"
    if not args.quick:
        go = decision(model, obs1, lewm, 6)
        t0 = time.perf_counter()
        go()
        tl = time.perf_counter() - t0
        data["cpu_model_lewm_budget_s"] = tl
        rows.append(["CPU preset model", f"lewm ({lb})", 1, f"{tl:.2f}"])
    if torch.cuda.is_available():
        dev = "cuda"
        big = build_world_model(**LEWM_MODEL).eval().to(dev)
        obs = torch.randint(0, 255, (1, 224, 224, 3), dtype=torch.uint8)
        go = decision(big, obs, lewm, 5, dev)
        tg = median_time(go, repeats)
        data["gpu"] = {"device": torch.cuda.get_device_name(0), "lewm_size_lewm_budget_s": tg}
        rows.append([f"LeWM size ({torch.cuda.get_device_name(0)})", f"lewm ({lb})", 1,
                     f"{tg:.3f}"])  # fmt: skip
    else:
        data["gpu"] = {"skipped": True, "reason": "no CUDA device"}
    md = [table(["model", "budget (samples/top/iterations/horizon)", "episodes planned together",
                 "s per decision"], rows)]  # fmt: skip
    if "gpu" in data and data["gpu"].get("skipped"):
        md.append("\nLeWM size on a GPU: not run (no CUDA device on this machine).")
    md.append(f"\nTarget (<= 1 s per decision, CPU preset, one episode, "
              f"{data['threads']} torch threads): {t1:.3f} s -> "
              f"{'MET' if t1 <= 1.0 else 'MISSED'}")  # fmt: skip
    finish("Planning: time per decision", "\n".join(md), data, args.json, start)


if __name__ == "__main__":
    main()
