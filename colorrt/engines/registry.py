"""One table of engine backends: which file suffixes each serves and where its engine class lives.

``load_engine`` dispatches from this table only; the CLI's ``--backend`` choices come from it too.
Backend modules are imported lazily, so TensorRT or torch load only when asked for.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colorrt.contract import ColorContract
from colorrt.engines.base import Engine
from colorrt.errors import BackendError, MissingDependencyError, ModelError

DEFAULT_MODEL_NAME = "colorrt-default.onnx"
_SERVED_URL = re.compile(r"(https?|grpcs?):/+")  # a served model's scheme; Path() leaves one "/"


@dataclass(frozen=True)
class Backend:
    """An engine backend: the module and class that run it, the model files it reads, its extra."""

    name: str
    module: str
    engine_class: str
    suffixes: tuple[str, ...]
    extra: str  # pip extra that installs its dependencies
    summary: str


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend(
            "onnxruntime",
            "colorrt.engines.onnxruntime_cuda",
            "onnxruntime_engine",  # CPU engine, or the CUDA/IOBinding engine for device="cuda"
            (".onnx",),
            "",
            "ONNX Runtime",
        ),
        Backend(
            "tensorrt",
            "colorrt.engines.tensorrt.runner",
            "TensorRTEngine",
            (".engine", ".plan", ".trt"),
            "gpu",
            "TensorRT engine",
        ),
        Backend("torch", "colorrt.engines.torch", "TorchEngine", (".pt", ".pth"), "export", "PyTorch eager"),
        Backend(
            "triton",
            "colorrt.distributed.triton",
            "TritonEngine",
            (),  # served models are URLs: http://host:8000/name, grpc://host:8001/name
            "scale",
            "model served by NVIDIA Triton Inference Server",
        ),
    )
}
BACKEND_CHOICES = ("auto", *BACKENDS)


def load_engine(
    model: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    device: str = "auto",
    contract: ColorContract | str | None = None,
    **opts: Any,
) -> Engine:
    """Create the engine for a model file.

    Args:
        model: model file; None means the bundled default model.
        backend: ``"auto"`` (chosen from the file suffix) or one of :data:`BACKENDS`.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (what each backend supports differs).
        contract: a :class:`ColorContract` or preset name overriding the model's stored contract.
        opts: backend-specific options (e.g. ``threads`` for onnxruntime).
    """
    path = Path(model) if model is not None else default_model_path()
    chosen = backend_for(path) if backend == "auto" else get_backend(backend)
    engine_class = _import_engine_class(chosen)
    return engine_class(path, contract=contract, device=device, **opts)


def get_backend(name: str) -> Backend:
    """The named backend, or a BackendError listing the choices and the closest name."""
    if name in BACKENDS:
        return BACKENDS[name]
    close = difflib.get_close_matches(name, list(BACKEND_CHOICES), n=1)
    hint = f"did you mean '{close[0]}'?" if close else None
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_CHOICES)}", hint)


def backend_for(path: Path) -> Backend:
    """The backend that reads model files with this suffix."""
    if model_url(path) is not None:
        return BACKENDS["triton"]
    suffix = path.suffix.lower()
    for candidate in BACKENDS.values():
        if suffix in candidate.suffixes:
            return candidate
    known = ", ".join(f"{s} ({b.name})" for b in BACKENDS.values() for s in b.suffixes)
    raise ModelError(
        f"cannot tell which backend runs {path} from its suffix {suffix or '(none)'!r}",
        f"known suffixes: {known}; or pass --backend",
    )


def model_url(model: str | os.PathLike[str] | None) -> str | None:
    """The URL of a model served over the network (``http://host:8000/name``, ``grpc://...``: the
    triton backend), with the ``//`` that ``Path()`` folds into ``/`` put back; None for a model file."""
    if model is None:
        return None
    text = os.fspath(model)
    match = _SERVED_URL.match(text)
    return None if match is None else f"{match.group(1)}://{text[match.end() :]}"


def default_model_path() -> Path:
    """The bundled default model (``colorrt/assets/colorrt-default.onnx``)."""
    path = Path(__file__).resolve().parent.parent / "assets" / DEFAULT_MODEL_NAME
    if not path.is_file():
        raise ModelError(
            f"the bundled default model is missing ({path})",
            "reinstall colorrt, or pass --model path/to/model.onnx",
        )
    return path


def _import_engine_class(backend: Backend) -> type[Engine]:
    try:
        module = importlib.import_module(backend.module)
    except ModuleNotFoundError as e:
        if e.name == backend.module:
            raise BackendError(
                f"the {backend.name} backend is not available yet in this colorrt installation",
                f"use --backend {_other_backends(backend)}, or update colorrt",
            ) from e
        missing = (e.name or "?").split(".")[0]
        if not backend.extra:
            raise BackendError(
                f"the {backend.name} backend needs '{missing}', which is not installed",
                "reinstall colorrt: pip install colorrt",
            ) from e
        raise MissingDependencyError(missing, backend.extra, f"the {backend.name} backend") from e
    return getattr(module, backend.engine_class)


def _other_backends(backend: Backend) -> str:
    return " / ".join(name for name in BACKENDS if name != backend.name)
