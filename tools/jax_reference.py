"""Independent reference for gradlab's training runs, in JAX (CPU).

Not used by gradlab, its build or its tests. Run in a throwaway virtualenv:

    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install "jax[cpu]" numpy
    /tmp/jaxenv/bin/python tools/jax_reference.py --data ../shared/datasets/cis680-hw1 --seeds 32 --task fc
    /tmp/jaxenv/bin/python tools/jax_reference.py --data ../shared/datasets/cis680-hw1 --seeds 32 --task line --act relu,leaky_relu
    /tmp/jaxenv/bin/python tools/jax_reference.py --data ../shared/datasets/cis680-hw1 --seeds 32 --task detect --act relu,leaky_relu

Every setting of ../shared/reference/EXPERIMENTS.md, written from the spec and not from
gradlab's code: truncated-normal weights (std 0.1, redrawn beyond 2 std), biases 0.1, full-batch
gradient descent, accuracy measured before each update, NCHW images and OIHW kernels. Seeds are
JAX's, so individual runs differ from gradlab's; the distributions of iterations-to-100% over
seeds are what is compared. Prints one JSON line per setting.
"""
import argparse, json, os, time
import numpy as np
import jax, jax.numpy as jnp

jax.config.update("jax_platforms", "cpu")

ACTS = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "leaky_relu": lambda x: jnp.maximum(0.1 * x, x),
}


def ce(o, y):
    return jnp.mean(jnp.maximum(o, 0) - o * y + jnp.log1p(jnp.exp(-jnp.abs(o))))


def init(key, shapes, std):
    params = {}
    for name, shape in shapes.items():
        key, sub = jax.random.split(key)
        if name.endswith("bias"):
            params[name] = jnp.full(shape, 0.1, jnp.float32)
        else:
            params[name] = std * jax.random.truncated_normal(sub, -2.0, 2.0, shape, jnp.float32)
    return params


def fc_model(act, loss):
    shapes = {"fc1.weight": (4, 16), "fc1.bias": (4,), "fc2.weight": (1, 4), "fc2.bias": (1,)}

    def forward(p, x):
        h = ACTS[act](x @ p["fc1.weight"].T + p["fc1.bias"])
        return (h @ p["fc2.weight"].T + p["fc2.bias"])[:, 0]

    def loss_fn(p, x, y, w):
        o = forward(p, x)
        l = ce(o, y) if loss == "ce" else jnp.mean((jax.nn.sigmoid(o) - y) ** 2)
        return l, (jnp.mean((o > 0) == (y > 0.5)), 1.0)

    return shapes, loss_fn


def cnn_model(act, task):
    shapes = {
        "conv1.weight": (16, 1, 7, 7), "conv1.bias": (16,),
        "conv2.weight": (8, 16, 7, 7), "conv2.bias": (8,),
        "cls.weight": (1, 128), "cls.bias": (1,),
    }
    if task == "detect":
        shapes.update({"reg.weight": (1, 128), "reg.bias": (1,)})
    dn = ("NCHW", "OIHW", "NCHW")

    def trunk(p, x):
        h = jax.lax.conv_general_dilated(x, p["conv1.weight"], (1, 1), "VALID", dimension_numbers=dn)
        h = ACTS[act](h + p["conv1.bias"][None, :, None, None])
        h = jax.lax.conv_general_dilated(h, p["conv2.weight"], (1, 1), "VALID", dimension_numbers=dn)
        h = ACTS[act](h + p["conv2.bias"][None, :, None, None])
        return h.reshape(h.shape[0], -1)  # channel-major flatten, like torch.flatten(x, 1)

    def loss_fn(p, x, y, w):
        h = trunk(p, x)
        o = (h @ p["cls.weight"].T + p["cls.bias"])[:, 0]
        cls_acc = jnp.mean((o > 0) == (y > 0.5))
        if task == "line":
            return ce(o, y), (cls_acc, 1.0)
        r = (h @ p["reg.weight"].T + p["reg.bias"])[:, 0]
        reg = 0.5 * jnp.sum((r - w) ** 2)
        return ce(o, y) + 0.01 * reg, (cls_acc, jnp.mean(jnp.abs(r - w) < 0.5))

    return shapes, loss_fn


def run(shapes, loss_fn, x, y, w, seeds, lr, max_iters, std=0.1, chunk=250):
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
    params = jax.vmap(lambda k: init(k, shapes, std))(keys)

    def step(p, _):
        (l, (a1, a2)), g = jax.value_and_grad(loss_fn, has_aux=True)(p, x, y, w)
        done = (a1 == 1.0) & (a2 == 1.0)
        p = jax.tree_util.tree_map(lambda v, d: v - lr * d, p, g)
        return p, done

    @jax.jit
    def many(p):
        return jax.lax.scan(jax.vmap(step), p, None, length=chunk)

    first = np.full(seeds, -1)
    it = 0
    while it < max_iters and (first < 0).any():
        params, done = many(params)
        done = np.asarray(done)  # [chunk, seeds]
        for s in range(seeds):
            if first[s] < 0 and done[:, s].any():
                first[s] = it + int(np.argmax(done[:, s])) + 1  # iterations count from 1
        it += chunk
    return [int(v) if v > 0 else None for v in first]


def trajectory(shapes, loss_fn, x, y, w, lr, iters, init_file):
    """Losses of plain gradient descent from the parameters in `init_file` (one model)."""
    from safetensors.numpy import load_file
    p = {k: jnp.asarray(v, jnp.float32) for k, v in load_file(init_file).items()}
    assert set(p) == set(shapes), (sorted(p), sorted(shapes))
    step = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    losses = []
    for _ in range(iters):
        (l, _), g = step(p, x, y, w)
        losses.append(float(l))
        p = jax.tree_util.tree_map(lambda v, d: v - lr * d, p, g)
    return losses


def summary(its, cap):
    v = np.array([i if i is not None else np.inf for i in its], dtype=float)
    q = lambda p: float(np.quantile(v, p)) if np.isfinite(np.quantile(v, p)) else None
    return {"converged": int(np.isfinite(v).sum()), "median": q(0.5), "p25": q(0.25), "p75": q(0.75), "iterations": its}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--task", choices=["fc", "line", "detect"], required=True)
    ap.add_argument("--act", default="relu,sigmoid")
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--max-iters", type=int, default=10000)
    ap.add_argument("--init", help="safetensors file: print the loss trajectory from these parameters")
    ap.add_argument("--loss", default="ce", help="fc loss with --init: ce or l2")
    ap.add_argument("--iters", type=int, default=100, help="trajectory length with --init")
    a = ap.parse_args()
    name = {"fc": "random", "line": "line", "detect": "detection"}[a.task]
    X = np.load(os.path.join(a.data, name, f"{name}_imgs.npy")).astype(np.float32)
    Y = np.load(os.path.join(a.data, name, f"{name}_labs.npy")).astype(np.float32)
    W = np.load(os.path.join(a.data, name, f"{name}_width.npy")).astype(np.float32) if a.task == "detect" else np.zeros_like(Y)
    if a.init:
        act = a.act.split(",")[0]
        if a.task == "fc":
            shapes, fn = fc_model(act, a.loss)
            xs, lr = X.reshape(len(X), -1), 0.1
        else:
            shapes, fn = cnn_model(act, a.task)
            xs, lr = X[:, None], (0.1 if a.task == "line" else 0.01)
        print(json.dumps({"task": a.task, "act": act, "loss": a.loss, "losses": trajectory(shapes, fn, xs, Y, W, lr, a.iters, a.init)}))
        return
    for act in a.act.split(","):
        losses = ["ce", "l2"] if a.task == "fc" else [None]
        for loss in losses:
            t = time.time()
            if a.task == "fc":
                shapes, fn = fc_model(act, loss)
                its = run(shapes, fn, X.reshape(len(X), -1), Y, W, a.seeds, 0.1, a.max_iters)
            else:
                shapes, fn = cnn_model(act, a.task)
                lr = 0.1 if a.task == "line" else 0.01
                its = run(shapes, fn, X[:, None], Y, W, a.seeds, lr, a.max_iters)
            out = {"task": a.task, "act": act, "loss": loss, "seconds": round(time.time() - t, 1), **summary(its, a.max_iters)}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
