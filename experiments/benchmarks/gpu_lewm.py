"""LeWM reference size on one GPU in bf16: frames/s and MFU (issue 8.4). Skips without CUDA.

    python experiments/benchmarks/gpu_lewm.py [--quick] [--batch 128] [--json PATH]

The JEPAModule of experiments/lewm_reference.yaml (ViT-tiny, patch 14, 224 px, 6-layer predictor)
at its full batch (128 windows of 4 frames), one training step = model_step under
`torch.autocast("cuda", torch.bfloat16)` + backward + gradient clipping + AdamW (fused), timed
with CUDA synchronisation (median of `--steps` after `--warmup`). Model FLOPs come from
FlopCounterMode over one forward+backward; MFU divides by this GPU's bf16 matmul rate measured
in the same run (torch.mm of two 8192 x 8192 bf16 matrices). Also reports peak GPU memory.
Without CUDA it prints why and exits 0 (the result says `skipped`).
"""

from __future__ import annotations

import argparse

import torch
from common import finish, load, table
from torch.utils.flop_counter import FlopCounterMode
from train_step import build


def cuda_time(fn, steps: int, warmup: int) -> float:
    """Median seconds of fn() with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def bf16_matmul_rate(device, n: int = 8192) -> float:
    """bf16 matmul FLOP/s of the GPU."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    return 2 * n**3 / cuda_time(lambda: torch.mm(a, b), 10, 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 timed steps")
    p.add_argument("--batch", type=int, default=128, help="windows per step (LeWM: 128)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", help="write the result here (for run_all.py)")
    args = p.parse_args()
    start = load()
    title = "GPU: LeWM reference size, bf16"
    if not torch.cuda.is_available():
        reason = "no CUDA device on this machine: not run"
        finish(title, reason + ".", {"skipped": True, "reason": reason}, args.json, start)
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device("cuda")
    module, _, batch = build("lewm_reference", args.batch)
    module.to(device)
    batch = {k: v.to(device) for k, v in batch.items()}
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4, fused=True)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            losses = module.model_step(batch, "train")
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()

    with FlopCounterMode(display=False) as counter:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = module.model_step(batch, "train")["loss"]
        loss.backward()
    module.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    peak = bf16_matmul_rate(device)
    torch.cuda.reset_peak_memory_stats()
    steps = 3 if args.quick else args.steps
    seconds = cuda_time(step, steps, args.warmup)
    B, L = batch["obs"].shape[:2]
    r = {
        "device": torch.cuda.get_device_name(0),
        "batch": B,
        "window": L,
        "step_s": seconds,
        "frames_per_s": B * L / seconds,
        "tflop_per_step": flops / 1e12,
        "bf16_matmul_tflops": peak / 1e12,
        "mfu": flops / seconds / peak,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    rows = [
        [
            r["device"],
            f"{B} x {L} @ 224 px",
            f"{seconds * 1e3:.1f}",
            f"{r['frames_per_s']:,.0f}",
            f"{r['tflop_per_step']:.2f}",
            f"{r['bf16_matmul_tflops']:.0f}",
            f"{r['mfu']:.1%}",
            f"{r['peak_mem_gib']:.1f}",
        ]
    ]
    md = table(
        [
            "GPU",
            "batch",
            "step ms",
            "frames/s",
            "model TFLOP/step",
            "bf16 matmul TFLOP/s",
            "MFU",
            "peak GiB",
        ],
        rows,
    )
    finish(title, md, r, args.json, start)


if __name__ == "__main__":
    main()
