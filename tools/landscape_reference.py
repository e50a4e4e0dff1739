"""Independent check of gradlab's whole-network landscapes and curvature, in JAX. Not used by
gradlab, its build or its tests. Run in a throwaway virtualenv:

    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax safetensors numpy
    /tmp/jaxenv/bin/python tools/landscape_reference.py --gradlab target/release/gradlab

On the course's `random` file (../shared/datasets/cis680-hw1), fc73 with ReLU and sigmoid
hidden units and sigmoid cross-entropy: gradlab trains one seed and saves its parameters, draws a
landscape (`gradlab landscape --network`) and computes the full Hessian spectrum (`gradlab
hessian`); JAX, from the same parameters and the saved directions, evaluates the loss on every
grid point and takes the exact Hessian (jax.hessian, float64) and its eigenvalues.
"""
import argparse, csv, json, os, subprocess, textwrap
import numpy as np
import jax, jax.numpy as jnp
from safetensors.numpy import load_file

jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_enable_x64", True)
DATA = "../shared/datasets/cis680-hw1"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gradlab", default="target/release/gradlab")
    ap.add_argument("--work", default="/tmp/gradlab-landscape-check")
    args = ap.parse_args()
    x = np.load(f"{DATA}/random/random_imgs.npy").reshape(64, 16).astype(np.float64)
    y = np.load(f"{DATA}/random/random_labs.npy").astype(np.float64)
    for act in ["relu", "sigmoid"]:
        d = os.path.join(args.work, act)
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/net.toml", "w") as f:
            f.write(textwrap.dedent(f"""
                [data]
                generator = "random"
                course_dir = "{DATA}"
                [network]
                layers = [{{ type = "dense", units = 4, act = "{act}" }}, {{ type = "dense", units = 1 }}]
                loss = "sigmoid_ce"
                [train]
                seeds = 1
                max_iters = 3000
                save_params = "{d}/params"
                """))
        run = lambda *a: subprocess.run([args.gradlab, *a], check=True, stdout=subprocess.DEVNULL)
        run("run", f"{d}/net.toml", "--out", f"{d}/run", "--force")
        run("landscape", "--network", f"{d}/net.toml", "--params", f"{d}/params/seed-0.safetensors",
            "--points", "11", "--out", f"{d}/ls", "--force")
        run("hessian", f"{d}/net.toml", "--params", f"{d}/params/seed-0.safetensors", "--out", f"{d}/h", "--force")
        p = {k: v.astype(np.float64) for k, v in load_file(f"{d}/params/seed-0.safetensors").items()}
        dirs = {k: v.astype(np.float64) for k, v in load_file(f"{d}/ls/directions.safetensors").items()}
        f_act = jax.nn.relu if act == "relu" else jax.nn.sigmoid

        def loss(q):
            h = f_act(x @ q["layers.0.weight"].T + q["layers.0.bias"])
            o = (h @ q["layers.1.weight"].T + q["layers.1.bias"])[:, 0]
            return jnp.mean(jnp.maximum(o, 0) - o * y + jnp.log1p(jnp.exp(-jnp.abs(o))))

        worst = 0.0
        for r in csv.DictReader(open(f"{d}/ls/grid.csv")):
            a, b = float(r["alpha"]), float(r["beta"])
            q = {k: p[k] + a * dirs[f"d1/{k}"] + b * dirs[f"d2/{k}"] for k in p}
            want = float(loss(q))
            worst = max(worst, abs(float(r["loss"]) - want) / want)
        names = list(p)
        flat0 = jnp.concatenate([p[k].ravel() for k in names])
        sizes = [p[k].size for k in names]

        def unflat(v):
            out, at = {}, 0
            for k, n in zip(names, sizes):
                out[k] = v[at:at + n].reshape(p[k].shape)
                at += n
            return out

        H = jax.hessian(lambda v: loss(unflat(v)))(flat0)
        ev = np.linalg.eigvalsh(np.asarray(H))
        top = ev[np.argmax(np.abs(ev))]
        mine = json.load(open(f"{d}/h/summary.json"))
        g_top = max(mine["top"][0], mine["bottom"][-1], key=abs)
        print(f"fc73 {act}+ce: 11×11 plane, max relative loss difference {worst:.1e}; "
              f"largest |eigenvalue| gradlab {g_top:.8f}, JAX {top:.8f}, relative difference {abs(g_top - top) / abs(top):.1e}")


if __name__ == "__main__":
    main()
