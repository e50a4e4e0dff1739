"""Type stubs of gradlab's native half (python/src/lib.rs); `gradlab/__init__.py` is the API."""

from typing import Any, Callable, Dict, List, Optional, Tuple

__version__: str

def run(
    kind: str,
    source: Any,
    overrides: Dict[str, Any],
    out: Optional[str] = None,
    force: bool = False,
    progress: Optional[Callable[[int, int, str, int, int, int, int], None]] = None,
) -> Dict[str, Any]: ...
def presets() -> List[Tuple[str, str]]: ...
def cells(kind: str, source: Any, overrides: Dict[str, Any]) -> List[Dict[str, Any]]: ...
def landscape(
    kind: str,
    source: Any,
    overrides: Dict[str, Any],
    params: Any,
    points: int = 51,
    span: float = 1.0,
    direction_seed: int = 0,
    biases: bool = False,
) -> Dict[str, Any]: ...
def hessian(
    kind: str,
    source: Any,
    overrides: Dict[str, Any],
    params: Any = None,
    top: int = 5,
    full: Optional[bool] = None,
    probes: int = 4,
    steps: int = 60,
    trace_tol: float = 0.001,
    max_probes: int = 200,
    seed: int = 0,
) -> Dict[str, Any]: ...
def check(
    kind: str, source: Any, overrides: Dict[str, Any], cell: int = 0, samples: int = 8, per_tensor: int = 16
) -> List[Dict[str, Any]]: ...
def neuron_landscape(
    act: str = "sigmoid",
    x: float = 1.0,
    y: float = 0.5,
    w_range: Tuple[float, float] = (-4.0, 4.0),
    b_range: Tuple[float, float] = (-4.0, 4.0),
    points: int = 201,
) -> Dict[str, Any]: ...
