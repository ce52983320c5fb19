"""Where does a world model lose the consequence of a defection? The consequence probe, per step.

    python experiments/consequence_steps.py --set DATA CKPT [CKPT ...] [--out F.md]

DATA: a counterfactual Polis set (the law study's `<law>-links_consequence`); CKPT: checkpoints
of models trained on that law (`runs/<run>/version_0/checkpoints/last.ckpt`). For each model and
target, the ego's defection-minus-cooperation effect at every step of the horizon, four ways:
the simulator's (true), decoded from the encoded real frames (the decoders' ceiling), the
rollout's (what `pwm probe` scores), and the one-step predictions' (each step predicted from the
H real frames before it). The probe's own function computes all four
(pwm/probes/consequence.py); this prints them per step, where the probe's table averages over
the horizon. Bad input (a missing checkpoint, a set without pairs) is one line, exit 2, nothing
written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pwm import provenance
from pwm.data.format import DatasetError, open_dataset
from pwm.probes.checkpoint import load_checkpoint
from pwm.probes.cli import DEFAULT_CONFIG
from pwm.probes.config import ProbeError, load_config
from pwm.probes.consequence import TARGETS, consequence_probe

ROWS = (("true", "true_effect"), ("decoded from real frames", "encoded_effect"),
        ("rollout", "predicted_effect"), ("one-step", "one_step_effect"))  # fmt: skip


def table(name: str, res: dict) -> list[str]:
    steps = res["steps"]
    head = ["target", "effect", *(f"step {s}" for s in range(steps)), "mean / true"]
    lines = [f"### {name} ({res['test_pairs']} held-out pairs, {steps} steps of "
             f"{res['frame_skip']} frames)", "", "| " + " | ".join(head) + " |",
             "|" + " --- |" * len(head)]  # fmt: skip
    for target in TARGETS:
        b = res[target]
        true = sum(b["true_effect"]) / steps
        for label, key in ROWS:
            v = b[key]
            ratio = f"{sum(v) / steps / true:.2f}" if true else "–"
            lines.append(f"| {target} | {label} | " + " | ".join(f"{x:+.3f}" for x in v)
                         + f" | {ratio} |")  # fmt: skip
    return lines + [""]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", type=Path, required=True, help="a counterfactual Polis set")
    p.add_argument("ckpts", type=Path, nargs="+", help="checkpoints of models of that law")
    p.add_argument("--out", type=Path, help="also write the tables (markdown) here")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="probe settings")
    args = p.parse_args(argv)
    args_text = sys.argv[1:] if argv is None else argv
    git = provenance.git_state()
    code = f"commit {git['commit'][:7]}" + (
        " (uncommitted changes)" if git["dirty"] is True else ""
    )
    try:
        cfg = load_config(args.config)
        data = open_dataset(args.set)
        models = [(c, load_checkpoint(c)) for c in args.ckpts]  # all checked before any work
        lines = ["# The consequence probe per step (experiments/consequence_steps.py)", "",
                 f"Command: `python experiments/consequence_steps.py {' '.join(args_text)}`; "
                 f"{code}.", ""]  # fmt: skip
        for path, module in models:
            res = consequence_probe(module, data, module.hparams["history"], cfg)
            rows = table(str(path), res)
            lines += rows
            print("\n".join(rows), flush=True)
    except (ProbeError, DatasetError) as exc:
        print(f"consequence_steps.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.out:
        args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
