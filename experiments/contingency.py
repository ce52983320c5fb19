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
from pathlib import Path

import numpy as np

from pwm.data.format import DatasetError, open_dataset
from pwm.probes.baselines import DEFECT

CONTEXTS = [
    (s, p, o) for s in ("consec_same", "other") for p in ("pC", "pD") for o in ("selfC", "selfD")
]


def contingency(executed: np.ndarray, partner: np.ndarray, round_len: int) -> dict[str, dict]:
    """executed, partner (E, T, N) int (-1: no exchange) -> {context: {"n", "p_defect"}}."""
    e, t, i = np.nonzero(partner >= 0)  # every exchange, by (e, t, i)
    order = np.lexsort((t, i, e))  # each agent's exchanges in time order
    e, t, i = e[order], t[order], i[order]
    j = partner[e, t, i]
    prev = np.flatnonzero((e[1:] == e[:-1]) & (i[1:] == i[:-1]))  # exchange k has k - 1 before
    now = prev + 1
    same = (j[now] == j[prev]) & (t[now] - t[prev] <= round_len)
    their = executed[e[prev], t[prev], j[prev]] == DEFECT  # the partner's move towards i then
    own = executed[e[prev], t[prev], i[prev]] == DEFECT
    defect = executed[e[now], t[now], i[now]] == DEFECT
    out = {}
    for ctx in CONTEXTS:
        sel = (same == (ctx[0] == "consec_same")) & (their == (ctx[1] == "pD"))
        sel &= own == (ctx[2] == "selfD")
        if sel.any():
            n = int(sel.sum())
            out[" ".join(ctx)] = {"n": n, "p_defect": round(float(defect[sel].sum()) / n, 4)}
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
