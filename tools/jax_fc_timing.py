"""Baseline for `gradlab bench`'s fc73 figures (issue 12): JAX jit + vmap + scan, 32 seeds x
10 000 full-batch SGD steps of the 73-parameter net (sigmoid hidden, sigmoid output, L2), on
CPU. Prints the run-only time (compilation excluded: the same jitted function is run once
before timing). Not used by the build or the tests.

    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax
    /tmp/jaxenv/bin/python tools/jax_fc_timing.py
"""
import time

import jax
import jax.numpy as jnp

jax.config.update("jax_platforms", "cpu")

SEEDS, ITERS, LR = 32, 10_000, 0.1


def loss_fn(p, x, y):
    h = jax.nn.sigmoid(x @ p["w1"].T + p["b1"])
    o = (h @ p["w2"].T + p["b2"])[:, 0]
    return jnp.mean((jax.nn.sigmoid(o) - y) ** 2)


def init(key):
    k1, k2 = jax.random.split(key)
    return {
        "w1": 0.1 * jax.random.truncated_normal(k1, -2.0, 2.0, (4, 16), jnp.float32),
        "b1": jnp.full((4,), 0.1, jnp.float32),
        "w2": 0.1 * jax.random.truncated_normal(k2, -2.0, 2.0, (1, 4), jnp.float32),
        "b2": jnp.full((1,), 0.1, jnp.float32),
    }


def main():
    kx, ky = jax.random.split(jax.random.PRNGKey(0))
    x = (jax.random.uniform(kx, (64, 16)) > 0.5).astype(jnp.float32)
    y = (jax.random.uniform(ky, (64,)) > 0.5).astype(jnp.float32)
    params = jax.vmap(init)(jax.random.split(jax.random.PRNGKey(1), SEEDS))

    def step(p, _):
        l, g = jax.value_and_grad(loss_fn)(p, x, y)
        return jax.tree_util.tree_map(lambda v, d: v - LR * d, p, g), l

    @jax.jit
    def train(p):
        return jax.lax.scan(jax.vmap(step), p, None, length=ITERS)

    jax.block_until_ready(train(params))  # compile
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        out = train(params)
        jax.block_until_ready(out)
        best = min(best, time.perf_counter() - t)
    print(f"jax {jax.__version__}: {SEEDS} seeds x {ITERS} iterations, run only (best of 3): {best:.3f} s "
          f"= {best / SEEDS / ITERS * 1e6:.3f} us per model-step")


if __name__ == "__main__":
    main()
