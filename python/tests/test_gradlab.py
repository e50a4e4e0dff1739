"""The Python package against the command line (bit for bit), its errors, Ctrl-C and threads.

Needs the command line built (`cargo build --release`; `GRADLAB_BIN` names another binary).
"""

from __future__ import annotations

import _thread
import csv
import json
import math
import os
import pathlib
import struct
import subprocess
import threading
import time

import numpy as np
import pytest

import gradlab

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("GRADLAB_BIN", REPO / "target" / "release" / "gradlab"))


def cli(*args: str, cwd: pathlib.Path) -> str:
    if not BIN.exists():
        pytest.fail(f"{BIN} is missing: build the command line first (cargo build --release) or set GRADLAB_BIN")
    done = subprocess.run([str(BIN), *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def read_safetensors(path: pathlib.Path) -> dict:
    """A safetensors file's tensors (F32/F64), read by the format's definition."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F32": "<f4", "F64": "<f8"}[t["dtype"]]
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=dtype).reshape(t["shape"])
    return out


def f32(text: str) -> float:
    return np.float32(float(text)) if text not in ("", "NaN") else np.float32("nan")


# fc73 of the report, both activations (a sweep of two cells), short, with held-out data and
# per-layer probes: the parts of a run the comparison below covers.
EXPERIMENT = """
[data]
generator = "random"
n = 64
seed = 3

[network]
layers = [
  { type = "dense", units = 4, act = "relu", name = "fc1" },
  { type = "dense", units = 1, name = "fc2" },
]
loss = "sigmoid_ce"

[init]
weights = "truncated_normal"
std = 0.1
bias = 0.1

[optim]
name = "sgd"
lr = 0.1

[train]
seeds = 6
max_iters = 400
eval_every = 3
probe_every = 50

[sweep]
"network.layers.0.act" = ["relu", "sigmoid"]
"""


def bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def test_a_run_equals_the_command_lines_outputs_bit_for_bit(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "fc73.toml"
    doc = EXPERIMENT.replace("probe_every = 50", f'probe_every = 50\nsave_params = "{tmp_path / "cli-params"}"')
    path.write_text(doc)
    cli("run", str(path), "--out", str(tmp_path / "cli"), cwd=tmp_path)
    r = gradlab.run(path, progress=False, save_params=str(tmp_path / "py-params"))
    assert r.complete and len(r) == 2

    # summary.json: the same content.
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert r.summary == summary

    # metrics.csv: every row of every seed, the same float32 bits.
    with open(tmp_path / "cli" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    by_setting = {run.name: run for run in r.runs}
    seen = 0
    for run in r.runs:
        for s, seed in enumerate(run.seeds):
            mine = [row for row in rows if row["setting"] == run.name and int(row["seed"]) == seed]
            assert [int(row["iteration"]) for row in mine] == run.at[s].tolist()
            want = np.array([[f32(row[c]) for c in run.columns] for row in mine], dtype=np.float32)
            assert np.array_equal(bits(want), bits(run.rows[s])), (run.name, seed)
            seen += len(mine)
    assert seen == len(rows) > 100
    assert set(by_setting) == {"network.layers.0.act=relu", "network.layers.0.act=sigmoid"}

    # curves.csv: the same quartiles at the same iterations.
    with open(tmp_path / "cli" / "curves.csv") as f:
        crow = list(csv.DictReader(f))
    for run in r.runs:
        mine = [row for row in crow if row["setting"] == run.name]
        assert [int(row["iteration"]) for row in mine] == run.curves["iteration"].tolist()
        assert [int(row["seeds_running"]) for row in mine] == run.curves["seeds_running"].tolist()
        for c in run.columns:
            for q in ("p25", "median", "p75"):
                want = np.array([f32(row[f"{c}_{q}"]) for row in mine], dtype=np.float32)
                assert np.array_equal(bits(want), bits(run.curves[f"{c}_{q}"]))

    # Parameters: every seed's, the same bits as the command line's safetensors files, under
    # the same names; and the files the Python run saved are the same bytes.
    for run in r.runs:
        for s, seed in enumerate(run.seeds):
            name = f"seed-{seed}.safetensors"
            theirs = read_safetensors(tmp_path / "cli-params" / run.name / name)
            assert sorted(theirs) == sorted(run.params[s])
            for k, v in theirs.items():
                assert v.shape == run.params[s][k].shape and np.array_equal(bits(v), bits(run.params[s][k]))
            assert (tmp_path / "cli-params" / run.name / name).read_bytes() == (
                tmp_path / "py-params" / run.name / name
            ).read_bytes()

    # Probes: the command line's probes.csv rows are the run's probe rows.
    probes = r[0].probes
    assert probes is not None and len(probes["rows"]) == 6
    assert all(len(p["value"]) > 0 for p in probes["rows"])


def test_out_writes_what_the_command_line_writes(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "fc73.toml"
    path.write_text(EXPERIMENT)
    cli("run", str(path), "--out", str(tmp_path / "cli"), cwd=tmp_path)
    gradlab.run(path, out=tmp_path / "py", progress=False)
    names = sorted(os.listdir(tmp_path / "cli"))
    assert names == sorted(os.listdir(tmp_path / "py")) and {"curves.png", "layers.csv", "network.txt"} <= set(names)
    for name in names:  # CSVs, summary.json, network.txt and the figures, byte for byte
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "py" / name).read_bytes(), name
    with pytest.raises(ValueError, match="not empty|already"):
        gradlab.run(path, out=tmp_path / "py", progress=False)


def test_arrays_produced_once_are_not_copied() -> None:
    r = gradlab.run(EXPERIMENT, progress=False, max_iters=50)
    run = r[0]
    rows = run.rows[0]
    # Owned by the Rust vector they were moved from (numpy did not allocate them).
    for a in [rows, run.at[0], run.seeds, run.params[0]["fc1.weight"], run.curves["loss_median"]]:
        assert not a.flags.owndata and type(a.base).__name__ == "PySliceContainer"
    loss = run.metric("loss")[0]
    assert np.shares_memory(loss, rows) and loss.dtype == np.float32
    assert run.params[0]["fc1.weight"].shape == (4, 16) and run.params[0]["fc2.bias"].shape == (1,)
    it, med = run.curve("loss")
    assert it.shape == med.shape and np.all(np.diff(it.astype(np.int64)) > 0)


def test_a_sweep_over_a_width_gives_each_cell_its_own_shapes() -> None:
    r = gradlab.run(EXPERIMENT, progress=False, max_iters=20, sweep={"network.layers.0.units": [4, 8]})
    assert [run.params[0]["fc1.weight"].shape for run in r] == [(4, 16), (8, 16)]
    assert [run.params[0]["fc2.weight"].shape for run in r] == [(1, 4), (1, 8)]


def test_the_three_forms_of_an_experiment_and_overrides_agree(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "e.toml"
    path.write_text(EXPERIMENT)
    doc = {
        "data": {"generator": "random", "n": 64, "seed": 3},
        "network": {
            "layers": [
                {"type": "dense", "units": 4, "act": "relu", "name": "fc1"},
                {"type": "dense", "units": 1, "name": "fc2"},
            ],
            "loss": "sigmoid_ce",
        },
        "init": {"weights": "truncated_normal", "std": 0.1, "bias": 0.1},
        "optim": {"name": "sgd", "lr": 0.1},
        "train": {"seeds": 6, "max_iters": 400, "eval_every": 3, "probe_every": 50},
    }
    a = gradlab.run(path, progress=False, sweep={})  # the sweep replaced by none
    b = gradlab.run(EXPERIMENT, progress=False, **{"network.layers.0.act": "relu"})  # a swept key given wins
    c = gradlab.run(doc, progress=False)
    assert [len(x) for x in (a, b, c)] == [1, 1, 1]
    for x in (b, c):
        assert all(np.array_equal(bits(p), bits(q)) for p, q in zip(a[0].rows, x[0].rows))
    d = gradlab.run(doc, progress=False, lr=0.05, seeds=2, optim={"momentum": 0.9})
    assert len(d[0].seeds) == 2
    assert not np.array_equal(bits(d[0].rows[0][:5]), bits(a[0].rows[0][:5]))
    cells = gradlab.cells(doc, lr=0.05, optim={"momentum": 0.9})
    assert cells[0]["experiment"]["optim"]["lr"] == 0.05 and cells[0]["experiment"]["optim"]["momentum"] == 0.9
    assert "fc73" in gradlab.presets()


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"seeds": 0}, "train.seeds"),
        ({"lr": -1.0}, "optim.lr"),
        ({"seeds": "many"}, "train.seeds"),
        ({"lrr": 0.1}, "lrr"),
        ({"network.layers.0.act": "relux"}, "relux"),
        ({"batch": 1000}, "data.batch"),
        ({"network.layers.5.act": "relu"}, "network.layers.5.act"),
        ({"optim": {"beta9": 1}}, "beta9"),
        ({"seeds": None}, "seeds"),
    ],
)
def test_bad_experiments_raise_value_error_naming_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        gradlab.run(EXPERIMENT, progress=False, **overrides)


def test_a_misspelt_keyword_gets_a_suggestion_and_a_missing_file_an_os_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="did you mean `lr`"):
        gradlab.run(EXPERIMENT, lrr=0.1)
    with pytest.raises(FileNotFoundError, match="no-such.toml"):
        gradlab.run(tmp_path / "no-such.toml")
    with pytest.raises(TypeError):
        gradlab.run(42)  # type: ignore[arg-type]


def test_hostile_input_raises_a_named_error_and_the_interpreter_lives_on(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A misspelt preset: a suggestion, not "file not found" alone.
    with pytest.raises(FileNotFoundError, match="did you mean `fc73`"):
        gradlab.run("fc37")
    # A network too large for memory: a named error before any allocation (it ended the kernel).
    huge = {
        "data": {"generator": "digits", "batch": 64},
        "network": {"layers": [{"type": "dense", "units": 10**9, "act": "relu"}, {"type": "dense", "units": 10}], "loss": "softmax_ce"},
        "train": {"seeds": 2, "max_iters": 2},
    }
    with pytest.raises(ValueError, match="memory budget"):
        gradlab.run(huge)
    # A data file that is missing: FileNotFoundError, as the README promises.
    missing = {
        "data": {"x": str(tmp_path / "none.npy"), "y": str(tmp_path / "none.npy")},
        "network": {"layers": [{"type": "dense", "units": 2}], "loss": "softmax_ce"},
    }
    with pytest.raises(FileNotFoundError, match="none.npy"):
        gradlab.run(missing)
    # to_pandas without pandas says how to get it.
    r = gradlab.run(EXPERIMENT, max_iters=5, progress=False)
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        r.to_pandas()
    assert gradlab.run(EXPERIMENT, max_iters=5, progress=False).complete


LONG = EXPERIMENT.replace("max_iters = 400", "max_iters = 10000000").replace("seeds = 6", "seeds = 32")


def test_ctrl_c_stops_the_run_and_leaves_a_whole_result(tmp_path: pathlib.Path) -> None:
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    with pytest.raises(gradlab.Interrupted) as caught:
        gradlab.run(LONG, progress=False, stop="none", sweep={}, out=tmp_path / "out")
    assert time.monotonic() - started < 30
    r = caught.value.result
    assert isinstance(caught.value, KeyboardInterrupt) and not r.complete and not r.summary["complete"]
    # The files landed too, whole and marked incomplete, as the command line's after Ctrl-C.
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written == r.summary and not written["complete"]
    assert not [p.name for p in (tmp_path / "out").iterdir() if ".tmp" in p.name]
    run = r[0]
    assert len(run.seeds) == 32 and len(run.params) == 32
    last = [int(a[-1]) for a in run.at]
    assert 0 < max(last) < 10_000_000
    for s in range(32):
        assert run.rows[s].shape == (len(run.at[s]), len(run.columns))
        assert np.all(np.isfinite(run.rows[s][:, run.columns.index("loss")]))
        assert all(np.all(np.isfinite(v)) for v in run.params[s].values())
    # A second run afterwards works as usual (nothing left set by the interruption).
    assert gradlab.run(EXPERIMENT, progress=False, max_iters=10).complete


def test_training_in_a_thread_does_not_block_python() -> None:
    done = threading.Event()
    out = {}

    def work() -> None:
        out["r"] = gradlab.run(LONG, progress=False, stop="none", max_iters=150_000, sweep={})
        done.set()

    t = threading.Thread(target=work)
    started = time.monotonic()
    t.start()
    ticks, gaps, last = 0, [], time.monotonic()
    while not done.is_set():
        now = time.monotonic()
        gaps.append(now - last)
        last = now
        ticks += 1
        sum(range(100))
    t.join()
    took = time.monotonic() - started
    assert took > 0.5, f"the run took only {took:.2f} s; make it longer for this test to mean something"
    # With the GIL held for the whole run, the loop above would stall for all of it.
    assert ticks > 1000 and max(gaps) < 0.25 * took, (ticks, max(gaps), took)
    assert out["r"].complete and out["r"][0].at[0][-1] > 150_000 - 3  # the last evaluated iteration


def test_an_error_in_the_progress_callable_stops_the_run_and_is_raised() -> None:
    def fail(*a) -> None:
        if a[3] > 1000:
            raise RuntimeError("from the callback")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="from the callback"):
        gradlab.run(LONG, progress=fail, stop="none", sweep={})
    assert time.monotonic() - started < 30


def test_progress_is_reported_and_ends_each_cell() -> None:
    calls = []
    gradlab.run(EXPERIMENT, progress=lambda *a: calls.append(a), max_iters=20_000, stop="none")
    assert [c[2] for c in calls if c[3] == -1] == ["network.layers.0.act=relu", "network.layers.0.act=sigmoid"]
    its = [c[3] for c in calls if c[0] == 0 and c[3] >= 0]
    assert its == sorted(its) and all(c[4] == 20_000 and c[6] == 6 for c in calls if c[3] >= 0)


def test_hessian_landscape_and_check_equal_their_commands(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "e.toml"
    path.write_text(EXPERIMENT.replace('"network.layers.0.act" = ["relu", "sigmoid"]', ""))
    r = gradlab.run(path, progress=False, save_params=str(tmp_path / "p"))
    params = tmp_path / "p" / "seed-0.safetensors"

    h = gradlab.hessian(path, r[0].params[0])
    cli("hessian", str(path), "--params", str(params), "--out", str(tmp_path / "h"), cwd=tmp_path)
    with open(tmp_path / "h" / "spectrum.csv") as f:
        ev = np.array([float(row["eigenvalue"]) for row in csv.DictReader(f)])
    assert h["eigenvalues"].shape == (73,) and np.array_equal(ev, h["eigenvalues"])
    theirs = json.loads((tmp_path / "h" / "summary.json").read_text())
    assert h["trace"] == theirs["trace"]["hutchinson"]
    assert h["summary"]["lanczos"]["bottom"] == theirs["lanczos"]["bottom"] == h["bottom"][::-1].tolist()
    assert h["summary"]["full"]["top"] == theirs["full"]["top"]
    assert h["top"][0] == pytest.approx(ev[0], rel=1e-6)

    ls = gradlab.landscape(path, params, points=9, span=0.5)
    cli("landscape", "--network", str(path), "--params", str(params), "--points", "9", "--span", "0.5",
        "--out", str(tmp_path / "l"), cwd=tmp_path)
    with open(tmp_path / "l" / "grid.csv") as f:
        grid = list(csv.DictReader(f))
    assert np.array_equal(np.array([float(g["loss"]) for g in grid]).reshape(9, 9), ls["loss"])
    assert ls["loss"].shape == (9, 9) and ls["alpha"][0] == -0.5
    same = gradlab.landscape(path, r[0].params[0], points=9, span=0.5)
    assert np.array_equal(same["loss"], ls["loss"])

    checks = gradlab.check(path)
    assert [c["name"] for c in checks] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(c["ok"] and c["max_rel_error"] < 1e-6 for c in checks)
    with pytest.raises(ValueError, match="`fc1.bias` is missing"):
        gradlab.hessian(path, {"fc1.weight": np.zeros((4, 16))})

    n = gradlab.neuron_landscape(points=11)
    assert n["l2"].shape == (11, 11) and n["w"][0] == -4.0


def test_pandas_frame_matches_the_rows() -> None:
    pd = pytest.importorskip("pandas")
    r = gradlab.run(EXPERIMENT, progress=False, max_iters=30)
    f = r.to_pandas()
    assert list(f.columns[:3]) == ["setting", "seed", "iteration"]
    assert len(f) == sum(len(a) for run in r for a in run.at)
    first = f[(f.setting == r[0].name) & (f.seed == 0)]
    assert np.array_equal(first["loss"].to_numpy(), r[0].metric("loss")[0])
    assert isinstance(f, pd.DataFrame)


def test_a_progress_bar_when_tqdm_is_there_and_none_when_it_is_not(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    try:
        import tqdm.auto  # noqa: F401

        gradlab.run(EXPERIMENT, max_iters=2000, stop="none")
        assert "network.layers.0.act=relu" in capsys.readouterr().err  # tqdm writes to stderr
    except ImportError:
        pass
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)  # as if not installed
    r = gradlab.run(EXPERIMENT, max_iters=200)
    assert r.complete and capsys.readouterr().err == ""
    with pytest.raises(ImportError, match="tqdm"):
        gradlab.run(EXPERIMENT, max_iters=200, progress=True)


def test_per_sample_measures_equal_the_command_lines(tmp_path: pathlib.Path) -> None:
    text = gradlab.presets()["digits-mlp"].replace("seeds = 8", "seeds = 3").replace("max_iters = 2000", "max_iters = 110")
    path = tmp_path / "digits.toml"
    path.write_text(text + "\n[samples]\nscore_at = [1, 50]\ncscore_ratios = [0.5, 0.75]\ncscore_epochs = 2\n")
    cli("run", str(path), "--out", str(tmp_path / "cli"), cwd=tmp_path)
    r = gradlab.run(path, progress=False)
    run = r[0]
    with open(tmp_path / "cli" / "sample_measures.csv") as f:
        every = list(csv.DictReader(f))
    rows = [row for row in every if row["seed"] != "mean"]
    # C-scores (Jiang et al.): the mean rows' column, every sample.
    cs = run.cscores
    assert cs is not None and cs["per_ratio"].shape == (2, 1437) and cs["ratios"].tolist() == [0.5, 0.75]
    means = [row for row in every if row["seed"] == "mean"]
    np.testing.assert_array_equal(np.array([float(row["cscore"]) for row in means]), cs["cscore"])
    np.testing.assert_array_equal(cs["per_ratio"].mean(axis=0), cs["cscore"])
    assert len(rows) == 3 * 1437 and run.samples is not None and len(run.samples) == 3
    num = lambda t: float(t) if t != "" else math.nan
    for s, seed in enumerate(run.seeds):
        mine = [row for row in rows if int(row["seed"]) == seed]
        m = run.samples[s]
        assert [int(row["forgetting"]) for row in mine] == m["forgetting"].tolist()
        assert [int(row["evaluations"]) for row in mine] == m["evaluations"].tolist()
        for key in ["correctness", "confidence", "variability"]:
            np.testing.assert_array_equal(np.array([num(row[key]) for row in mine]), m[key])
        for k, it in enumerate([1, 50]):
            assert m["scored"][k]["iteration"] == it
            np.testing.assert_array_equal(np.array([num(row[f"el2n_it{it}"]) for row in mine]), m["scored"][k]["el2n"])
            np.testing.assert_array_equal(np.array([num(row[f"grand_it{it}"]) for row in mine]), m["scored"][k]["grand"])
    # Held-out accuracy and the confusion matrix (held-out digits, 10 classes) as summary.json says.
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert r.summary == summary and run.held_out_accuracy is not None
    conf = run.confusion
    assert conf is not None and conf["classes"] == 10 and conf["pooled"].shape == (10, 10)
    for s in range(3):
        c = conf["per_seed"][s]
        assert np.trace(c) / c.sum() == pytest.approx(run.held_out_accuracy[s], abs=1e-12)
