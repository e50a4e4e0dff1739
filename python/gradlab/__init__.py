"""gradlab from Python: train many seeds of a network in lockstep on gradlab's exact engine and
get the run back as NumPy arrays.

    import gradlab
    r = gradlab.run("fc73", seeds=32)              # a preset, a file, a network file's text or a dict
    r.summary["cells"][0]["median_iterations"]     # summary.json's content
    run = r["network.layers.0.act=relu"]           # one cell of the sweep (or r.runs[0])
    run.curve("loss")                              # (iterations, median over seeds)
    run.params[0]["fc1.weight"]                    # seed 0's final parameters, safetensors names
    r.to_pandas()                                  # metrics.csv as a DataFrame

The experiment goes through the same schema, defaults and validator as `gradlab run FILE`, and
the numbers are the command line's bit for bit. Training releases the GIL; Ctrl-C stops it after
the current iteration and raises `gradlab.Interrupted`, whose `.result` holds every run so far,
whole and marked `complete = False`.
"""

from __future__ import annotations

import operator
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _gradlab

__version__: str = _gradlab.__version__

__all__ = [
    "run",
    "Result",
    "Run",
    "Interrupted",
    "presets",
    "cells",
    "landscape",
    "neuron_landscape",
    "hessian",
    "check",
]

Experiment = Union[str, "os.PathLike[str]", Mapping[str, Any]]
Params = Union[str, "os.PathLike[str]", Mapping[str, Any]]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (KeyboardInterrupt) stopped a run after its current iteration.

    ``result`` holds what was trained, every array whole: the cell that was running up to the
    iteration it reached, the cells after it not at all, ``result.complete`` False.
    """

    def __init__(self, result: "Result") -> None:
        super().__init__("interrupted: the runs so far are in this exception's .result (complete = False)")
        self.result = result


def _pandas() -> Any:
    """pandas, or an ImportError that says how to get it (it is an optional dependency)."""
    try:
        import pandas as pd  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError("to_pandas() needs pandas: pip install pandas (or pip install 'gradlab[pandas]')") from None
    return pd


def presets() -> Dict[str, str]:
    """The compiled-in network files (the report's nets, the digits and Playground examples),
    name → TOML text. ``gradlab.run(name)`` runs one."""
    return dict(_gradlab.presets())


def _source(experiment: Experiment) -> Tuple[str, Any]:
    """Which kind of experiment this is: a dict, a preset's name, a path, or a file's text."""
    if isinstance(experiment, Mapping):
        return "dict", dict(experiment)
    if isinstance(experiment, os.PathLike):
        return "path", os.fspath(experiment)
    if isinstance(experiment, str):
        if "\n" in experiment or "=" in experiment:
            return "text", experiment
        known = presets()
        if experiment in known and not os.path.exists(experiment):
            return "text", known[experiment]
        if not os.path.exists(experiment) and os.sep not in experiment and "." not in experiment:
            # Not a file, and named like a preset: the user most likely misspelt one.
            import difflib

            close = difflib.get_close_matches(experiment, list(known), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise FileNotFoundError(
                f"{experiment}: no such file, nor a preset{hint} (presets: {', '.join(sorted(known))})"
            )
        return "path", experiment
    raise TypeError(
        f"an experiment is a path, a network file's text, a preset's name or a dict, not {type(experiment).__name__}"
    )


class _Progress:
    """A tqdm bar per cell when tqdm is installed (tqdm.auto: a widget in a notebook), else nothing."""

    def __init__(self, enabled: Optional[bool]) -> None:
        self.bar: Any = None
        self.cell = -1
        self.tqdm: Any = None
        if enabled is not False:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-untyped]

                self.tqdm = tqdm
            except ImportError:
                if enabled:
                    raise ImportError("progress=True needs tqdm (pip install tqdm)") from None

    def __call__(self, cell: int, cells: int, name: str, it: int, max_iters: int, converged: int, seeds: int) -> None:
        if self.tqdm is None:
            return
        if it < 0:
            self.close()
            return
        if self.bar is None or self.cell != cell:
            self.close()
            self.cell = cell
            self.bar = self.tqdm(total=max_iters, desc=f"[{cell + 1}/{cells}] {name}", unit="it", leave=False)
        self.bar.n = it
        self.bar.set_postfix_str(f"{converged}/{seeds} seeds at 100%", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Run:
    """One cell of an experiment (one setting), every seed of it.

    Per seed (lists indexed like ``seeds``): ``rows[s]`` a float32 array ``[rows, columns]`` of the
    metrics at iterations ``at[s]`` (the rows ``metrics.csv`` has: every ``eval_every``-th
    iteration, thinned unless ``train.all_rows``, each seed's last); ``params[s]`` its final
    parameters (and BatchNorm's running estimates) as arrays under their safetensors names.
    ``curves`` holds ``curves.csv``'s columns: at every iteration some seed has a row, the seeds
    still running and each metric's 25th/50th/75th percentile over seeds (a stopped seed holds its
    last value). ``probes``, ``samples`` (forgetting, data maps, EL2N/GraNd), ``cscores``,
    ``confusion`` and ``learned_at`` are there when the experiment asks for them, else None.
    """

    def __init__(self, d: Dict[str, Any]) -> None:
        self.name: str = d["name"]
        self.index: int = d["index"]
        self.axes: Dict[str, Any] = d["axes"]
        self.summary: Dict[str, Any] = d["summary"]
        self.every: int = d["every"]
        self.columns: List[str] = d["columns"]
        self.seeds: np.ndarray = d["seeds"]
        self.rows: List[np.ndarray] = d["rows"]
        self.at: List[np.ndarray] = d["at"]
        self.iterations: List[Optional[int]] = d["iterations"]
        self.diverged_at: List[Optional[int]] = d["diverged_at"]
        self.max_abs_weight: np.ndarray = d["max_abs_weight"]
        self.held_out_accuracy: Optional[np.ndarray] = d["held_out_accuracy"]
        self.held_out_heads: Dict[str, np.ndarray] = d["held_out_heads"]
        self.curves: Dict[str, np.ndarray] = d["curves"]
        self.probes: Optional[Dict[str, Any]] = d["probes"]
        self.samples: Optional[List[Dict[str, Any]]] = d["samples"]
        self.cscores: Optional[Dict[str, Any]] = d["cscores"]
        self.confusion: Optional[Dict[str, Any]] = d["confusion"]
        self.learned_at: Optional[List[np.ndarray]] = d["learned_at"]
        self.params: List[Dict[str, np.ndarray]] = d["params"]

    def _column(self, name: str) -> int:
        try:
            return self.columns.index(name)
        except ValueError:
            raise KeyError(f"no metric `{name}` (this run has {', '.join(self.columns)})") from None

    def metric(self, name: str) -> List[np.ndarray]:
        """One metric of every seed: per seed a view (no copy) into ``rows[s]``, at ``at[s]``."""
        c = self._column(name)
        return [r[:, c] for r in self.rows]

    def curve(self, name: str, quantile: str = "median") -> Tuple[np.ndarray, np.ndarray]:
        """``(iterations, values)`` of one metric's ``p25``, ``median`` or ``p75`` over seeds."""
        self._column(name)
        if quantile not in ("p25", "median", "p75"):
            raise ValueError(f"quantile must be p25, median or p75, not {quantile!r}")
        return self.curves["iteration"], self.curves[f"{name}_{quantile}"]

    def to_pandas(self) -> "Any":
        """The run's rows as ``metrics.csv`` has them: setting, seed, iteration, then a column per
        metric (a copy)."""
        pd = _pandas()
        frames = []
        for seed, rows, at in zip(self.seeds, self.rows, self.at):
            f = pd.DataFrame(rows, columns=self.columns)
            f.insert(0, "iteration", at)
            f.insert(0, "seed", np.full(len(at), seed, dtype=np.uint64))
            f.insert(0, "setting", self.name)
            frames.append(f)
        if not frames:
            return pd.DataFrame(columns=["setting", "seed", "iteration", *self.columns])
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        s = self.summary
        med = s.get("median_iterations")
        held = s.get("median_held_out_accuracy")
        return (
            f"Run({self.name!r}: {s['seeds']} seeds, {s['converged']} stopped by the rule, {s['diverged']} diverged, "
            f"median iterations {'—' if med is None else f'{med:.0f}'}"
            + ("" if held is None else f", held-out accuracy {100 * held:.1f}% (median)")
            + ")"
        )


class Result:
    """What ``gradlab.run`` returns: ``summary`` (``summary.json``'s content), ``runs`` (one
    ``Run`` per cell of the sweep, in order), ``complete`` (False after Ctrl-C). Index by a cell's
    name or position: ``result["base"]``, ``result[0]``."""

    def __init__(self, d: Dict[str, Any]) -> None:
        self.summary: Dict[str, Any] = d["summary"]
        self.complete: bool = d["complete"]
        self.file: str = d["file"]
        self.total_cells: int = d["total_cells"]
        self.runs: List[Run] = [Run(r) for r in d["runs"]]

    def __getitem__(self, key: Union[int, str]) -> Run:
        if not isinstance(key, str):
            return self.runs[operator.index(key)]
        for r in self.runs:
            if r.name == key:
                return r
        raise KeyError(f"no cell `{key}` (cells: {', '.join(r.name for r in self.runs)})")

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self):
        return iter(self.runs)

    def to_pandas(self) -> "Any":
        """Every cell's rows in one DataFrame, as ``metrics.csv`` has them (a copy)."""
        pd = _pandas()
        return pd.concat([r.to_pandas() for r in self.runs], ignore_index=True)

    def __repr__(self) -> str:
        state = "" if self.complete else " (interrupted: incomplete)"
        lines = [f"Result of {self.file}: {len(self.runs)} of {self.total_cells} cell(s){state}"]
        lines += [f"  {r!r}" for r in self.runs]
        return "\n".join(lines)


def run(
    experiment: Experiment,
    *,
    out: Optional[Union[str, "os.PathLike[str]"]] = None,
    force: bool = False,
    progress: Union[bool, None, Callable[..., None]] = None,
    **overrides: Any,
) -> Result:
    """Trains every cell of an experiment, every seed in lockstep, and returns the run.

    ``experiment`` is a network file's path, its text, a preset's name (``gradlab.presets()``) or
    a dict in the same schema (``{"data": {...}, "network": {...}, ...}``). Keyword overrides set
    keys before the one validator runs: a field of ``[data]``, ``[init]``, ``[optim]`` or
    ``[train]`` by its short name (``seeds=32``, ``lr=0.1``, ``max_iters=500``, ``batch=64``) or any
    key by its dotted name (``**{"network.loss": "l2"}``). A bad experiment raises ``ValueError``
    naming the key and the problem, the command line's message.

    ``out`` also writes what ``gradlab run --out`` writes (summary.json, metrics.csv, curves,
    figures; ``force`` into a non-empty directory). ``progress``: None shows a tqdm bar when tqdm is
    installed, False none, a callable gets ``(cell, cells, name, iteration, max_iters, converged,
    seeds)`` about every 100 ms (``iteration`` −1 when a cell ends).

    Training runs with the GIL released. Ctrl-C stops it after the current iteration and raises
    ``Interrupted``, whose ``.result`` holds the runs so far.
    """
    kind, source = _source(experiment)
    bar = progress if callable(progress) else _Progress(progress)
    try:
        d = _gradlab.run(kind, source, overrides, None if out is None else os.fspath(out), force, bar)
    finally:
        if isinstance(bar, _Progress):
            bar.close()
    result = Result(d)
    stopped = d["interrupted"]
    if isinstance(stopped, KeyboardInterrupt):
        raise Interrupted(result) from stopped
    if stopped is not None:  # the progress callable raised: the run stopped there
        raise stopped
    return result


def cells(experiment: Experiment, **overrides: Any) -> List[Dict[str, Any]]:
    """The cells ``run`` would train, each resolved (its sweep values set) and checked:
    ``name``, ``axes``, ``experiment`` (the whole schema as a dict), ``seeds``, ``max_iters``."""
    kind, source = _source(experiment)
    return _gradlab.cells(kind, source, overrides)


def _params(params: Params) -> Any:
    if isinstance(params, Mapping):
        return {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in params.items()}
    return os.fspath(params)


def landscape(
    experiment: Experiment,
    params: Params,
    *,
    points: int = 51,
    span: float = 1.0,
    direction_seed: int = 0,
    biases: bool = False,
    **overrides: Any,
) -> Dict[str, Any]:
    """The training loss and accuracy on the plane through ``params`` (a dict of arrays such as
    ``run.params[s]``, or a safetensors path) along two filter-normalised random directions (Li
    et al. 2018), as ``gradlab landscape --network`` draws it: ``alpha``, ``beta`` (the axes, ±span),
    ``loss`` and ``accuracy`` as ``[beta, alpha]`` arrays, the directions ``d1``, ``d2`` by tensor."""
    kind, source = _source(experiment)
    return _gradlab.landscape(kind, source, overrides, _params(params), points, span, direction_seed, biases)


def neuron_landscape(
    act: str = "sigmoid",
    x: float = 1.0,
    y: float = 0.5,
    w_range: Tuple[float, float] = (-4.0, 4.0),
    b_range: Tuple[float, float] = (-4.0, 4.0),
    points: int = 201,
) -> Dict[str, np.ndarray]:
    """Task 1: one neuron's output, L2 loss and cross-entropy with their gradients over (w, b), as
    ``[b, w]`` arrays with the axes ``w`` and ``b`` (``gradlab landscape`` without ``--network``)."""
    (w0, w1), (b0, b1) = w_range, b_range
    return _gradlab.neuron_landscape(act, x, y, (float(w0), float(w1)), (float(b0), float(b1)), points)


def hessian(
    experiment: Experiment,
    params: Optional[Params] = None,
    *,
    top: int = 5,
    full: Optional[bool] = None,
    probes: int = 4,
    steps: int = 60,
    trace_tol: float = 1e-3,
    max_probes: int = 200,
    seed: int = 0,
    **overrides: Any,
) -> Dict[str, Any]:
    """The curvature of the training loss (whole training set, f64) at ``params``, or at the first
    seed's initialisation, as ``gradlab hessian`` measures it: Lanczos's ``top`` largest and
    smallest eigenvalues with residuals, Hutchinson's ``trace``, the spectral ``density`` by
    stochastic Lanczos quadrature and, for nets up to 3000 parameters (or ``full=True``), every
    ``eigenvalues``; ``summary`` is its summary.json."""
    kind, source = _source(experiment)
    p = None if params is None else _params(params)
    return _gradlab.hessian(kind, source, overrides, p, top, full, probes, steps, trace_tol, max_probes, seed)


def check(
    experiment: Experiment, *, cell: int = 0, samples: int = 8, per_tensor: int = 16, **overrides: Any
) -> List[Dict[str, Any]]:
    """Every parameter tensor's gradient at the first seed's initial parameters against central
    finite differences in f64 (``gradlab check``): one dict per tensor and mode with the largest
    relative and absolute errors and ``ok``."""
    kind, source = _source(experiment)
    return _gradlab.check(kind, source, overrides, cell, samples, per_tensor)
