"""Baseline for `gradlab bench`'s CNN figures (issue 35): the report's detect CNN (conv 16×7×7 →
ReLU → conv 8×7×7 → ReLU → two dense heads on 128 features: sigmoid CE + 0.01 × ½Σ(ŵ − w)²),
full batch of 64 16×16 images, SGD 0.01, in JAX jit + scan on CPU. Prints the run-only time
per training step (compilation excluded: the same jitted function runs once before timing) for
one seed — the figure `gradlab train detect --seeds 1` is compared with — and per model-step for
8 seeds under vmap. Not used by the build or the tests.

    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax
    /tmp/jaxenv/bin/python tools/jax_cnn_timing.py [--iters 300]
"""
import argparse
import time

import jax
import jax.numpy as jnp

jax.config.update("jax_platforms", "cpu")

LR = 0.01


def init(key):
    k = jax.random.split(key, 4)
    tn = lambda kk, shape: 0.1 * jax.random.truncated_normal(kk, -2.0, 2.0, shape, jnp.float32)
    return {
        "conv1.weight": tn(k[0], (16, 1, 7, 7)),
        "conv1.bias": jnp.full((16,), 0.1, jnp.float32),
        "conv2.weight": tn(k[1], (8, 16, 7, 7)),
        "conv2.bias": jnp.full((8,), 0.1, jnp.float32),
        "cls.weight": tn(k[2], (1, 128)),
        "cls.bias": jnp.full((1,), 0.1, jnp.float32),
        "reg.weight": tn(k[3], (1, 128)),
        "reg.bias": jnp.full((1,), 0.1, jnp.float32),
    }


def conv(x, w, b):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return jax.nn.relu(y + b[None, :, None, None])


def loss_fn(p, x, y, width):
    h = conv(conv(x, p["conv1.weight"], p["conv1.bias"]), p["conv2.weight"], p["conv2.bias"])
    f = h.reshape(h.shape[0], -1)
    logit = (f @ p["cls.weight"].T + p["cls.bias"])[:, 0]
    pred = (f @ p["reg.weight"].T + p["reg.bias"])[:, 0]
    ce = jnp.mean(jnp.maximum(logit, 0) - logit * y + jnp.log1p(jnp.exp(-jnp.abs(logit))))
    return ce + 0.01 * 0.5 * jnp.sum((pred - width) ** 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=300)
    iters = ap.parse_args().iters
    kx, ky, kw = jax.random.split(jax.random.PRNGKey(0), 3)
    x = (jax.random.uniform(kx, (64, 1, 16, 16)) > 0.8).astype(jnp.float32)
    y = (jax.random.uniform(ky, (64,)) > 0.5).astype(jnp.float32)
    width = jax.random.randint(kw, (64,), 1, 8).astype(jnp.float32)

    def step(p, _):
        l, g = jax.value_and_grad(loss_fn)(p, x, y, width)
        return jax.tree_util.tree_map(lambda v, d: v - LR * d, p, g), l

    for seeds in (1, 8):
        params = jax.vmap(init)(jax.random.split(jax.random.PRNGKey(1), seeds))
        train = jax.jit(lambda p: jax.lax.scan(jax.vmap(step), p, None, length=iters))
        jax.block_until_ready(train(params))  # compile
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            jax.block_until_ready(train(params))
            best = min(best, time.perf_counter() - t)
        print(
            f"jax {jax.__version__}: detect CNN, {seeds} seed(s) x {iters} iterations, run only (best of 3): "
            f"{best:.3f} s = {best / iters * 1e3:.3f} ms per step, {best / iters / seeds * 1e3:.3f} ms per model-step"
        )


if __name__ == "__main__":
    main()
