"""Compares a gradlab loss trajectory (metrics.csv of a one-seed run) with tools/jax_reference.py's
(--init, same parameters). Usage: python3 tools/compare_trajectories.py NAME=JAX.json=metrics.csv ...
Not used by gradlab, its build or its tests.

The cross-framework check, from identical initial parameters (fc, line, detect):

    gradlab train fc --act relu --loss ce --seeds 1 --first-seed 3 --max-iters 1 --save-params p --out o0
    gradlab train fc --act relu --loss ce --seeds 1 --max-iters 100 --init p/seed-3.safetensors --data DATA --out o
    python tools/jax_reference.py --data DATA --task fc --act relu --loss ce --init p/seed-3.safetensors --iters 100 > j.json
    python3 tools/compare_trajectories.py fc-relu-ce=j.json=o/metrics.csv
"""
import json, csv, sys
def cmp(name, jfile, csvfile):
    j = json.load(open(jfile))["losses"]
    g = [float(r["loss"]) for r in csv.DictReader(open(csvfile))]
    n = min(len(j), len(g))
    rel = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(g[:n], j[:n]))
    print(f"{name:14} iterations {n:4d}  max relative difference {rel:.2e}  (first {g[0]:.6f} vs {j[0]:.6f}, last {g[n-1]:.6f} vs {j[n-1]:.6f})")
for a in sys.argv[1:]:
    name, jf, cf = a.split("=")
    cmp(name, jf, cf)
