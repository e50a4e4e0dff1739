"""Independent check of gradlab's open lab: networks, softmax cross-entropy, pooling and the
optimisers (Adam, SGD with momentum, AdamW), in JAX + optax, from gradlab's own initial
parameters. Not used by gradlab, its build or its tests. Run in a throwaway virtualenv:

    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax optax safetensors numpy
    /tmp/jaxenv/bin/python tools/optax_reference.py --gradlab target/release/gradlab --work /tmp/xcheck [--probes] [--x64]

For each case it writes a network file (digits, full batch, one seed), runs
`gradlab run` with `save_every` (so `seed-<s>-iter-0.safetensors` holds the initial parameters),
then trains the same network in JAX from those parameters with optax and compares the loss of
every iteration with gradlab's metrics.csv (relative difference, both in float32).

The JAX side is written from the definitions, not from gradlab's code: dense y = x·Wᵀ + b on
inputs flattened channel-major (NCHW), convolution as lax.conv_general_dilated with OIHW kernels,
max-pooling as reduce_window, softmax cross-entropy as optax.softmax_cross_entropy_with_integer_labels,
and optax.adam / optax.sgd(momentum) / optax.adamw with PyTorch's default hyperparameters.
"""
import argparse, csv, os, subprocess, textwrap
import numpy as np
import jax, jax.numpy as jnp, optax
from safetensors.numpy import load_file

jax.config.update("jax_platforms", "cpu")

DIGITS = "../shared/datasets/digits"

CASES = {
    "mlp-adam": dict(
        layers=[("dense", 32, "tanh"), ("dense", 10, None)],
        optim='name = "adam"\nlr = 0.01',
        tx=lambda: optax.adam(0.01, b1=0.9, b2=0.999, eps=1e-8),
    ),
    "mlp-momentum": dict(
        layers=[("dense", 32, "relu"), ("dense", 16, "sigmoid"), ("dense", 10, None)],
        optim='name = "momentum"\nlr = 0.1\nmomentum = 0.9',
        tx=lambda: optax.sgd(0.1, momentum=0.9),
    ),
    "cnn-adamw": dict(
        layers=[("conv", 8, "relu"), ("maxpool", 2, None), ("conv2", 16, "relu"), ("dense", 10, None)],
        optim='name = "adamw"\nlr = 0.005\nweight_decay = 0.01',
        tx=lambda: optax.adamw(0.005, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01),
    ),
    # Layer normalisation, an L2 penalty on the weights (not on γ, β or biases) and a cosine
    # schedule with warm-up (issue 26): the penalty is added to the loss here, the schedule is
    # optax's learning-rate function of the update count.
    "ln-l2-cosine": dict(
        layers=[("dense", 32, None), ("layernorm", 0, "relu"), ("dense", 10, None)],
        optim='name = "momentum"\nlr = 0.1\nmomentum = 0.9\nl2 = 0.001\nschedule = "cosine"\nwarmup = 10\neta_min = 0.001',
        l2=(0.001, ["layers.0.weight", "layers.2.weight"]),
        tx=lambda iters: optax.sgd(cosine_with_warmup(0.1, 10, iters - 10, 0.001), momentum=0.9),
    ),
    # Batch normalisation (batch statistics in training; running estimates with PyTorch's
    # momentum 0.1 and unbiased variance) after two convolutions and a dense layer, and an L2
    # penalty on the weights (issue 26). The running estimates are compared at the end too.
    "bn-l2-cnn": dict(
        layers=[("conv", 8, None), ("batchnorm", 0, "relu"), ("maxpool", 2, None), ("conv2", 16, None),
                ("batchnorm", 0, "relu"), ("dense", 32, None), ("batchnorm", 0, "relu"), ("dense", 10, None)],
        optim='name = "momentum"\nlr = 0.05\nmomentum = 0.9\nl2 = 0.001',
        l2=(0.001, ["layers.0.weight", "layers.3.weight", "layers.5.weight", "layers.7.weight"]),
        tx=lambda iters: optax.sgd(0.05, momentum=0.9),
    ),
}


def cosine_with_warmup(lr, warmup, t_max, eta_min):
    """The rate of update `count + 1` (optax counts from 0): lr·t/w during the warm-up, then
    PyTorch's CosineAnnealingLR from its start."""
    def rate(count):
        t = count + 1
        k = jnp.minimum(jnp.maximum(t - warmup - 1, 0), t_max)
        cosine = eta_min + (lr - eta_min) * (1 + jnp.cos(jnp.pi * k / t_max)) / 2
        return jnp.where(t <= warmup, lr * t / warmup, cosine)
    return rate


def network_toml(layers):
    rows = []
    for kind, n, act in layers:
        a = f', act = "{act}"' if act else ""
        if kind == "dense":
            rows.append(f'{{ type = "dense", units = {n}{a} }}')
        elif kind == "conv":
            rows.append(f'{{ type = "conv2d", channels = {n}, kernel = 3, padding = 1{a} }}')
        elif kind == "conv2":
            rows.append(f'{{ type = "conv2d", channels = {n}, kernel = 3{a} }}')
        elif kind == "layernorm":
            rows.append(f'{{ type = "layernorm"{a} }}')
        elif kind == "batchnorm":
            rows.append(f'{{ type = "batchnorm"{a} }}')
        else:
            rows.append(f'{{ type = "maxpool", kernel = {n} }}')
    return "layers = [\n  " + ",\n  ".join(rows) + ",\n]"


ACTS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, None: lambda x: x}


def forward(params, layers, x, taps=None, stats=None):
    """`taps`: zeros added to each layer's pre-activation, so that the gradient with respect to
    them is the back-propagated gradient gradlab's probes report (`grad_rms`). BatchNorm uses the
    batch's statistics (training mode) and appends (layer, mean, biased variance, count) to
    `stats`."""
    for i, (kind, n, act) in enumerate(layers):
        if kind == "dense":
            x = x.reshape(x.shape[0], -1) @ params[f"layers.{i}.weight"].T + params[f"layers.{i}.bias"]
        elif kind in ("conv", "conv2"):
            pad = 1 if kind == "conv" else 0
            x = jax.lax.conv_general_dilated(x, params[f"layers.{i}.weight"], (1, 1), [(pad, pad), (pad, pad)],
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
            x = x + params[f"layers.{i}.bias"][None, :, None, None]
        elif kind == "layernorm":
            mean = x.mean(axis=1, keepdims=True)
            var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
            x = (x - mean) / jnp.sqrt(var + 1e-5) * params[f"layers.{i}.weight"] + params[f"layers.{i}.bias"]
        elif kind == "batchnorm":
            axes = (0, 2, 3) if x.ndim == 4 else (0,)
            shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
            mean = x.mean(axis=axes)
            var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
            if stats is not None:
                stats.append((i, mean, var, x.size // x.shape[1]))
            x = ((x - mean.reshape(shape)) / jnp.sqrt(var.reshape(shape) + 1e-5) * params[f"layers.{i}.weight"].reshape(shape)
                 + params[f"layers.{i}.bias"].reshape(shape))
        else:
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, n, n), (1, 1, n, n), "VALID")
        if taps is not None:
            x = x + taps[i]
        x = ACTS[act](x)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gradlab", default="target/release/gradlab")
    ap.add_argument("--work", default="/tmp/gradlab-xcheck")
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--probes", action="store_true",
                    help="also compare gradlab's per-layer probes (layers.csv) at iterations 1 and 100")
    ap.add_argument("--x64", action="store_true",
                    help="also train in float64 and report how far each float32 run is from it")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    x = np.load(f"{DIGITS}/train_x.npy").astype(np.float32)[:, None] / 16.0
    y = np.load(f"{DIGITS}/train_y.npy")
    for name, case in CASES.items():
        d = os.path.join(args.work, name)
        text = textwrap.dedent(f"""
            [data]
            x = "{DIGITS}/train_x.npy"
            y = "{DIGITS}/train_y.npy"
            scale = 0.0625
            [network]
            {network_toml(case["layers"])}
            loss = "softmax_ce"
            [init]
            weights = "he_uniform"
            bias = 0.01
            [optim]
            {case["optim"]}
            [train]
            seeds = 1
            first_seed = {args.seed}
            max_iters = {args.iters}
            stop = "none"
            save_params = "{d}/params"
            save_every = {args.iters - 1}
            probe_every = 100
            all_rows = true
            """)
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/net.toml", "w") as f:
            f.write(text)
        subprocess.run([args.gradlab, "run", f"{d}/net.toml", "--out", f"{d}/out", "--force"], check=True,
                       stdout=subprocess.DEVNULL)
        g = [float(r["loss"]) for r in csv.DictReader(open(f"{d}/out/metrics.csv"))]
        params0 = load_file(f"{d}/params/seed-{args.seed}-iter-0.safetensors")
        params = {k: jnp.asarray(v) for k, v in params0.items()}
        layers = case["layers"]
        inputs = x if any(k.startswith("conv") for k, _, _ in layers) else x.reshape(len(x), -1)

        def trajectory(params, inputs):
            rate, names = case.get("l2", (0.0, []))

            def loss_fn(p):
                stats = []
                data = optax.softmax_cross_entropy_with_integer_labels(forward(p, layers, inputs, stats=stats), y).mean()
                penalty = sum(0.5 * rate * jnp.sum(p[k] ** 2) for k in names)
                return data + penalty, (data, stats)  # gradlab's loss column is the data loss
            tx = case["tx"](args.iters) if "l2" in case else case["tx"]()
            state = tx.init(params)
            step = jax.jit(lambda p, s: (lambda la, gr: (la[1], *tx.update(gr, s, p)))(
                *jax.value_and_grad(loss_fn, has_aux=True)(p)))
            running = {}
            out = []
            for _ in range(args.iters):
                (l, stats), updates, state = step(params, state)
                params = optax.apply_updates(params, updates)
                for i, mean, var, n in stats:
                    i, n = int(i), int(n)
                    m, v = running.get(i, (jnp.zeros_like(mean), jnp.ones_like(var)))
                    running[i] = (0.9 * m + 0.1 * mean, 0.9 * v + 0.1 * var * n / (n - 1))
                out.append(float(l))
            trajectory.running = running
            return out

        j = trajectory(params, inputs)
        if args.probes:
            compare_probes(d, args.seed, layers, inputs, y, args.iters)
        n = min(len(g), len(j))
        rel = max(abs(a - b) / abs(b) for a, b in zip(g[:n], j[:n]))
        print(f"{name:13} {n} iterations: loss {g[0]:.6f} → {g[n-1]:.6f} (JAX {j[0]:.6f} → {j[n-1]:.6f}), "
              f"max relative difference {rel:.2e}")
        if getattr(trajectory, "running", None):
            final = load_file(f"{d}/params/seed-{args.seed}.safetensors")
            worst = max(float(jnp.max(jnp.abs(final[f"layers.{i}.running_{k}"] - r) / jnp.maximum(jnp.abs(r), 1e-3)))
                        for i, (m, v) in trajectory.running.items() for k, r in (("mean", m), ("var", v)))
            print(f"{'':13} running estimates after {args.iters} steps: max relative difference {worst:.2e}")
        if args.x64:
            jax.config.update("jax_enable_x64", True)
            t = trajectory({k: v.astype(jnp.float64) for k, v in params0.items()}, inputs.astype(np.float64))
            jax.config.update("jax_enable_x64", False)
            dev = lambda a: max(abs(u - v) / abs(v) for u, v in zip(a[:n], t[:n]))
            print(f"{'':13} against float64 JAX: gradlab (float32) {dev(g):.2e}, JAX (float32) {dev(j):.2e}")


def compare_probes(d, seed, layers, inputs, y, iters):
    """gradlab's probes at iterations 1 and `iters` against JAX evaluated at the very parameters
    gradlab had there (its saved iter-0 and iter-(iters−1) files), so that the probes are checked
    apart from float32 drift of the trajectories: per-layer back-propagated gradient RMS,
    per-tensor gradient norm and weight norm. Prints the largest relative difference of each."""
    rows = {}
    for r in csv.DictReader(open(f"{d}/out/layers.csv")):
        rows[(int(r["iteration"]), r["layer"], r["quantity"])] = float(r["value"])

    def loss_with_taps(p, taps):
        return optax.softmax_cross_entropy_with_integer_labels(forward(p, layers, inputs, taps), y).mean()

    out = []
    for it in (1, iters):
        params = {k: jnp.asarray(v) for k, v in load_file(f"{d}/params/seed-{seed}-iter-{it - 1}.safetensors").items()}
        taps = [jnp.zeros(forward(params, layers[: i + 1], inputs).shape, jnp.float32) for i in range(len(layers))]
        gp, gt = jax.grad(loss_with_taps, argnums=(0, 1))(params, taps)
        worst = {}
        for i, (kind, _, _) in enumerate(layers):
            if kind != "maxpool":
                want = float(jnp.sqrt(jnp.mean(gt[i] ** 2)))
                worst["grad_rms"] = max(worst.get("grad_rms", 0), abs(rows[(it, f"layers.{i}", "grad_rms")] - want) / want)
        for name, g in gp.items():
            for q, want in (("param_grad_norm", float(jnp.linalg.norm(g))), ("param_norm", float(jnp.linalg.norm(params[name])))):
                worst[q] = max(worst.get(q, 0), abs(rows[(it, name, q)] - want) / max(want, 1e-30))
        out.append(f"iteration {it}: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    print(f"{'':13} probes against JAX at gradlab's parameters, max relative difference: " + "; ".join(out))


if __name__ == "__main__":
    main()
