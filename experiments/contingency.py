"""How learnable is retaliation from a Polis training set? Lag-1 contingency rates.

    python experiments/contingency.py data/study/polis [--json OUT]

For every exchange of an agent i after its first, the previous exchange of i gives the context:
was it with the same partner one round before (`consec_same`) or not (`other`), did that partner
cooperate or defect towards i (`pC`/`pD`), and did i itself (`selfC`/`selfD`). The table is
P(i defects now | context) with the number of exchanges. M1's trusted betrayal is context
(consec_same, pC, selfC), its retaliation (consec_same, pD, selfC): a learner of the lag-1
statistics of the data would pass M1 if these rates differ and it can tell the contexts apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from pwm.data.format import DatasetError, open_dataset

DEFECT, NONE = 0, -1  # executed-action codes (data_gen.agents.D; no exchange)


def contingency(executed: np.ndarray, partner: np.ndarray, round_len: int) -> dict[str, dict]:
    """executed, partner (E, T, N) int -> {context: {"n": exchanges, "p_defect": rate}}."""
    counts: Counter = Counter()
    E, T, N = executed.shape
    for e in range(E):
        last: dict[int, tuple[int, int, int, int]] = {}  # i -> (frame, partner, their, own)
        for t in range(T):
            for i in np.nonzero(partner[e, t] != NONE)[0]:
                j = int(partner[e, t, i])
                if i in last:
                    f, pj, their, own = last[i]
                    ctx = (
                        "consec_same" if pj == j and t - f <= round_len else "other",
                        "pD" if their == DEFECT else "pC",
                        "selfD" if own == DEFECT else "selfC",
                    )
                    counts[(*ctx, executed[e, t, i] == DEFECT)] += 1
                last[i] = (t, j, int(executed[e, t, j]), int(executed[e, t, i]))
    out = {}
    for ctx in sorted({k[:3] for k in counts}):
        d, c = counts[(*ctx, True)], counts[(*ctx, False)]
        out[" ".join(ctx)] = {"n": d + c, "p_defect": round(d / (d + c), 4)}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path, help="a Polis dataset (pwm generate polis)")
    p.add_argument("--json", type=Path, help="also write the table as JSON")
    args = p.parse_args(argv)
    try:
        ds = open_dataset(args.data)
        if ds.world != "polis":
            raise DatasetError(f"{args.data} is a {ds.world} dataset, not polis")
        table = contingency(
            ds.array("executed"), ds.array("partner"), ds.manifest["config"]["round_len"]
        )
    except DatasetError as exc:
        sys.exit(f"contingency.py: error: {exc}")
    for ctx, row in table.items():
        print(f"{ctx:<24} n={row['n']:>6}  P(defect)={row['p_defect']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
