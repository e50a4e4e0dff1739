"""Independent check of gradlab's in-training sharpness (issue 23), in JAX. Not used by gradlab,
its build or its tests. Run in a throwaway virtualenv:

    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax safetensors numpy
    /tmp/jaxenv/bin/python tools/curvature_reference.py --gradlab target/release/gradlab

On the course's `random` file (../shared/datasets/cis680-hw1), fc73 ReLU + sigmoid CE and
sigmoid + L2 (sigmoid output), from new random parameters (normal std 0.5, seeds 1000-1003):
gradlab trains with `sharpness_every = 1`, `lambda_min = true` and saves the parameters before
every step; JAX takes the exact float64 Hessian (jax.hessian) at the parameters of iterations 1
and 3 and its eigenvalues (eigvalsh). Prints the relative differences of λmax and λmin.
"""
import argparse, csv, os, subprocess, textwrap
import numpy as np
import jax, jax.numpy as jnp
from safetensors.numpy import load_file

jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_enable_x64", True)
DATA = "../shared/datasets/cis680-hw1"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gradlab", default="target/release/gradlab")
    ap.add_argument("--work", default="/tmp/gradlab-curvature-check")
    args = ap.parse_args()
    x = np.load(f"{DATA}/random/random_imgs.npy").reshape(64, 16).astype(np.float64)
    y = np.load(f"{DATA}/random/random_labs.npy").astype(np.float64).reshape(64)
    worst = 0.0
    for act, loss_name in [("relu", "sigmoid_ce"), ("sigmoid", "l2")]:
        d = os.path.join(args.work, f"{act}-{loss_name}")
        os.makedirs(f"{d}/params", exist_ok=True)
        out_act = 'output_act = "sigmoid"' if loss_name == "l2" else ""
        with open(f"{d}/net.toml", "w") as f:
            f.write(textwrap.dedent(f"""
                [data]
                generator = "random"
                course_dir = "{DATA}"
                [network]
                layers = [{{ type = "dense", units = 4, act = "{act}" }}, {{ type = "dense", units = 1 }}]
                loss = "{loss_name}"
                {out_act}
                [init]
                weights = "normal"
                std = 0.5
                bias = 0.1
                [train]
                seeds = 4
                first_seed = 1000
                max_iters = 3
                stop = "none"
                sharpness_every = 1
                lambda_min = true
                all_rows = true
                save_params = "{d}/params"
                save_every = 1
                """))
        subprocess.run([args.gradlab, "run", f"{d}/net.toml", "--out", f"{d}/run", "--force"],
                       check=True, stdout=subprocess.DEVNULL)
        rows = list(csv.DictReader(open(f"{d}/run/metrics.csv")))
        f_act = jax.nn.relu if act == "relu" else jax.nn.sigmoid

        def loss(q):
            h = f_act(x @ q["layers.0.weight"].T + q["layers.0.bias"])
            o = (h @ q["layers.1.weight"].T + q["layers.1.bias"])[:, 0]
            if loss_name == "l2":
                return jnp.mean((jax.nn.sigmoid(o) - y) ** 2)
            return jnp.mean(jnp.maximum(o, 0) - o * y + jnp.log1p(jnp.exp(-jnp.abs(o))))

        for seed in range(1000, 1004):
            for it in [1, 3]:
                p = {k: v.astype(np.float64) for k, v in
                     load_file(f"{d}/params/seed-{seed}-iter-{it - 1}.safetensors").items()}
                names = list(p)
                sizes = [p[k].size for k in names]

                def unflat(v):
                    out, at = {}, 0
                    for k, n in zip(names, sizes):
                        out[k] = v[at:at + n].reshape(p[k].shape)
                        at += n
                    return out

                flat = jnp.concatenate([p[k].ravel() for k in names])
                ev = np.linalg.eigvalsh(np.asarray(jax.hessian(lambda v: loss(unflat(v)))(flat)))
                row = next(r for r in rows if int(r["seed"]) == seed and int(r["iteration"]) == it)
                mine_max, mine_min = float(row["sharpness"]), float(row["lambda_min"])
                rmax = abs(mine_max - ev[-1]) / abs(ev[-1])
                rmin = abs(mine_min - ev[0]) / max(abs(ev[0]), abs(ev[-1]))
                worst = max(worst, rmax, rmin)
                print(f"{act}+{loss_name} seed {seed} it {it}: λmax gradlab {mine_max:.6f} JAX {ev[-1]:.6f} "
                      f"(rel {rmax:.1e}); λmin gradlab {mine_min:.6f} JAX {ev[0]:.6f} (rel {rmin:.1e})")
    print(f"worst relative difference: {worst:.1e}")


if __name__ == "__main__":
    main()
