"""Recompute gradlab's per-sample measures with NumPy, from a run's per-evaluation trace, the way
the reference code computes them, and compare with gradlab's sample_measures.csv.

  gradlab run NET.toml --out OUT          # with [samples] trace = true
  python tools/samples_reference.py OUT

Definitions as in the reference repositories:
- forgetting (mtoneva/example_forgetting, order_examples_by_forgetting.py): transitions 1 -> 0 of
  the per-presentation accuracy; a never-learned example counts as many as its presentations;
- confidence, variability, correctness (allenai/cartography, train_dy_filtering.py):
  np.mean / np.std (ddof 0) of the true-class probability; correctness as a fraction here
  (cartography sums; gradlab divides by the number of evaluations).
Needs only NumPy; not part of gradlab's build or tests (tests/samples.rs does the same in Rust).
"""

import csv
import sys
from collections import defaultdict

import numpy as np


def forgetting(acc):
    acc = np.asarray(acc, dtype=int)
    if not acc.any():
        return len(acc)
    transitions = acc[1:] - acc[:-1]
    return int((transitions == -1).sum())


def main(out):
    trace = defaultdict(list)
    with open(f"{out}/sample_evaluations.csv") as f:
        for row in csv.DictReader(f):
            key = (row["setting"], row["seed"], int(row["sample"]))
            trace[key].append((int(row["iteration"]), int(row["correct"]), float(row["p_true"])))
    worst = defaultdict(float)
    checked = 0
    with open(f"{out}/sample_measures.csv") as f:
        for row in csv.DictReader(f):
            if row["seed"] == "mean":
                continue
            evals = sorted(trace[(row["setting"], row["seed"], int(row["sample"]))])
            acc = [c for _, c, _ in evals]
            p = np.array([q for _, _, q in evals])
            want = {
                "evaluations": len(evals),
                "forgetting": forgetting(acc),
                "confidence": p.mean(),
                "variability": p.std(),
                "correctness": np.mean(acc),
            }
            for k, v in want.items():
                worst[k] = max(worst[k], abs(float(row[k]) - v))
            checked += 1
    print(f"{checked} (seed, sample) pairs checked; largest |gradlab − numpy| per measure:")
    for k, v in worst.items():
        print(f"  {k:12s} {v:.3g}")
    bad = worst["evaluations"] > 0 or worst["forgetting"] > 0 or max(worst["confidence"], worst["variability"], worst["correctness"]) > 1e-9
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
