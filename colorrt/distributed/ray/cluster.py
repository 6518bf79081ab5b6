"""Ray cluster setup: what every worker builds, where and how wide to run, the Ray session.

Shared by the image path (:mod:`colorrt.distributed.ray.images`) and the film path
(:mod:`colorrt.distributed.ray.video`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from colorrt.contract import ColorContract
from colorrt.engines.registry import BACKENDS, default_model_path, model_url
from colorrt.errors import BackendError, ColorRTError, ContractError, InputError, require
from colorrt.runtime.runtime import Runtime

EXTRA = "scale"  # pip extra that installs ray[data]


@dataclass(frozen=True)
class RuntimeSpec:
    """How each worker builds its :class:`Runtime` (sent to the workers, so it holds no engine).

    ``model`` must be a path every worker can read (None: the bundled default model).
    """

    model: str | None = None
    backend: str = "auto"
    device: str = "auto"
    batch_size: int = 4
    contract: ColorContract | str | None = None
    threads: int | None = None

    def build(self) -> Runtime:
        """The Runtime, created on the worker."""
        return Runtime(
            self.model,
            backend=self.backend,
            device=self.device,
            batch_size=self.batch_size,
            contract=self.contract,
            threads=self.threads,
        )


@dataclass(frozen=True)
class ClusterSpec:
    """Where and how wide to run.

    Args:
        address: Ray cluster address (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``); None
            joins the cluster this process is already connected to, or starts a local one.
        workers: actors, each holding one Runtime (one per GPU on a GPU cluster).
        gpus_per_worker: GPUs each actor reserves; None: 1 for ``device="cuda"`` or the TensorRT
            backend, else 0.
        cpus_per_worker: CPUs each actor reserves; a CPU engine gets as many threads.
    """

    address: str | None = None
    workers: int = 2
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise InputError(f"workers must be an integer >= 1, got {self.workers!r}")
        if self.cpus_per_worker <= 0 or (self.gpus_per_worker is not None and self.gpus_per_worker < 0):
            raise InputError(
                f"cpus_per_worker must be > 0 and gpus_per_worker >= 0, got {self.cpus_per_worker} and "
                f"{self.gpus_per_worker}"
            )

    def gpus(self, runtime: RuntimeSpec) -> float:
        """GPUs per actor for this runtime."""
        if self.gpus_per_worker is not None:
            return self.gpus_per_worker
        on_gpu = runtime.device == "cuda" or runtime.backend == "tensorrt"
        suffix = Path(runtime.model or "").suffix.lower()
        return 1.0 if on_gpu or suffix in BACKENDS["tensorrt"].suffixes else 0.0

    def worker_runtime(self, runtime: RuntimeSpec) -> RuntimeSpec:
        """The runtime spec with CPU threads matched to the CPUs an actor reserves."""
        served = model_url(runtime.model) is not None  # a Triton URL: no local threads
        if runtime.threads is not None or served or self.gpus(runtime) > 0:
            return runtime
        return replace(runtime, threads=max(1, int(self.cpus_per_worker)))


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """The ``ray`` module, connected: reuses a running connection, else connects (or starts a local
    instance when ``address`` is None) and disconnects at the end."""
    ray = require("ray", EXTRA, "colorizing on a Ray cluster")
    require("ray.data", EXTRA, "colorizing on a Ray cluster")
    if ray.is_initialized():
        yield ray
        return
    try:
        if address is None:
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    except ConnectionError as e:
        raise InputError(
            f"cannot connect to the Ray cluster at {address!r}: {e}",
            "start it with `ray start --head` on the head node, or pass --address ray://HEAD:10001",
        ) from e
    try:
        yield ray
    finally:
        ray.shutdown()


def check_model(spec: RuntimeSpec) -> None:
    """Fail on the driver, before any actor starts, when the model file is missing or has no contract."""
    if model_url(spec.model) is not None:
        from colorrt.distributed.triton import TritonURL

        TritonURL.parse(spec.model)  # the server itself is checked by each actor
        return
    path = Path(spec.model) if spec.model is not None else default_model_path()
    if not path.is_file():
        raise InputError(f"no such model file: {path}", "every Ray node must see the model at this path")
    if path.suffix.lower() == ".onnx" and spec.contract is None:
        from colorrt.engines.onnxruntime import describe_onnx

        description = describe_onnx(path)
        if description.contract is None:
            raise ContractError(f"{path}: {description.contract_problem}")


@contextmanager
def ray_errors(ray: Any) -> Iterator[None]:
    """Re-raise a colorrt error that failed a Ray task or actor as itself (the CLI prints it cleanly)."""
    try:
        yield
    except ray.exceptions.RayError as e:
        cause = _colorrt_cause(e)
        if cause is not None:
            raise cause from e
        raise BackendError(
            f"the Ray job failed: {_reason(e)}", "see the Ray worker logs (`ray logs`, or the dashboard)"
        ) from e


def _reason(error: BaseException) -> str:
    """The colorrt error named in a Ray error's text (an actor that died in its constructor carries
    only text), else the text's first line."""
    text = str(error).strip()
    found = re.findall(r"colorrt\.errors\.(\w+): (.+)", text)
    if found:
        return f"{found[-1][0]}: {found[-1][1]}"
    return text.splitlines()[0] if text else type(error).__name__


def _colorrt_cause(error: BaseException) -> ColorRTError | None:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ColorRTError):
            return error
        cause = getattr(error, "cause", None)  # RayTaskError keeps the task's exception here
        if isinstance(cause, ColorRTError):
            return cause
        error = error.__cause__ or error.__context__
    return None


def ray_specs(
    model: str | os.PathLike[str] | None,
    *,
    address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float | None = None,
    cpus_per_worker: float = 1.0,
    backend: str = "auto",
    device: str = "auto",
    batch_size: int = 4,
    contract: ColorContract | str | None = None,
    threads: int | None = None,
) -> tuple[ClusterSpec, RuntimeSpec]:
    """Where and how wide to run, and what each worker builds: the keyword arguments shared by
    :func:`colorize_folder_ray` and :func:`colorize_video_ray`.

    ``address``, ``workers``, ``gpus_per_worker`` and ``cpus_per_worker`` are :class:`ClusterSpec`'s;
    ``model`` and the others are :class:`Runtime`'s.
    """
    cluster = ClusterSpec(address, workers, gpus_per_worker, cpus_per_worker)
    return cluster, RuntimeSpec(_model_path(model), backend, device, batch_size, contract, threads)


def map_options(ray: Any, cluster: ClusterSpec, runtime: RuntimeSpec, **extra: Any) -> dict[str, Any]:
    """``map_batches`` keywords for an actor pool of ``cluster.workers`` Runtimes."""
    options = {
        "compute": ray.data.ActorPoolStrategy(size=cluster.workers, **extra),
        "num_cpus": cluster.cpus_per_worker,
        "batch_format": "numpy",
    }
    gpus = cluster.gpus(runtime)
    if gpus > 0:
        options["num_gpus"] = gpus
    return options


def absolute(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().absolute()


def _model_path(model: str | os.PathLike[str] | None) -> str | None:
    if model is None:
        return None
    return model_url(model) or str(absolute(model))


def quiet_progress(ray: Any) -> None:
    """Ray Data's per-operator bars flood a log; the overall bar is kept."""
    context = ray.data.DataContext.get_current()
    context.enable_operator_progress_bars = False
