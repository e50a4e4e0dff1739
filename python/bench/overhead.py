"""`gradlab.run` against `gradlab run` on the same file: fc73 (Table 1's net, both activations as
the preset sweeps them) × 32 seeds, alternating, several rounds; prints each round's seconds and
the ratio of the medians. The command line writes its figures and CSVs; `gradlab.run` is timed
both without outputs (the notebook's case) and with `out=` (the same files written).

    python python/bench/overhead.py [--rounds 5] [--iters 100000] [--bin target/release/gradlab]
"""

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import gradlab

REPO = pathlib.Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "gradlab"))
    ap.add_argument("--file", default=str(REPO / "examples" / "networks" / "fc73.toml"))
    ap.add_argument(
        "--iters",
        type=int,
        default=0,
        help="train every seed this many iterations (stop = none) so that training, not start-up, dominates",
    )
    a = ap.parse_args()
    if a.iters:
        text = pathlib.Path(a.file).read_text().replace("max_iters = 10000", f'max_iters = {a.iters}\nstop = "none"')
        long = pathlib.Path(tempfile.mkdtemp()) / "experiment.toml"
        long.write_text(text)
        a.file = str(long)
    times = {"gradlab run (CLI)": [], "gradlab.run": [], "gradlab.run(out=)": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            t = time.perf_counter()
            subprocess.run([a.bin, "run", a.file, "--out", f"{tmp}/cli", "--force"], check=True, capture_output=True)
            times["gradlab run (CLI)"].append(time.perf_counter() - t)
            t = time.perf_counter()
            gradlab.run(a.file, progress=False)
            times["gradlab.run"].append(time.perf_counter() - t)
            t = time.perf_counter()
            gradlab.run(a.file, progress=False, out=f"{tmp}/py", force=True)
            times["gradlab.run(out=)"].append(time.perf_counter() - t)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()), flush=True)
    base = statistics.median(times["gradlab run (CLI)"])
    for k, v in times.items():
        m = statistics.median(v)
        print(f"{k:>20}: median {m:.3f} s  ({m / base:.3f} × the command line)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
