"""Colorization as a service: colorrt's Runtime behind a real Triton Inference Server.

``colorrt serve`` (``pip install 'colorrt[serve]'``) writes a model repository whose models run
:class:`colorrt.Runtime` in Triton's Python backend (:mod:`colorrt.serve.repository`,
:mod:`colorrt.serve.backend`) and starts the ``tritonserver`` bundled in the ``nvidia-pytriton``
wheel on it (:mod:`colorrt.serve.server`): HTTP/gRPC endpoints speaking the KServe v2 protocol,
dynamic batching, health, statistics and metrics. See docs/serve.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

from colorrt.serve.repository import MODEL_KINDS, ServedModel, write_python_model
from colorrt.serve.requests import COLORIZED, IMAGES, MAX_PIXELS
from colorrt.serve.server import TritonServer, bundled_server, libpython_dir

__all__ = [
    "COLORIZED",
    "IMAGES",
    "MAX_PIXELS",
    "MODEL_KINDS",
    "ServedModel",
    "TritonServer",
    "bundled_server",
    "libpython_dir",
    "serve",
    "write_python_model",
]


def serve(
    models: Sequence[ServedModel] = (ServedModel(),),
    *,
    host: str = "0.0.0.0",
    http_port: int = 8000,
    grpc_port: int = 8001,
    metrics_port: int = 8002,
    log_file: str | os.PathLike[str] | None = None,
    startup_timeout_s: float = 180.0,
) -> TritonServer:
    """Start a Triton server with ``models`` in a temporary repository; returns it running.

    Stop it with ``server.stop()`` (or use it in a ``with`` block): the repository goes with it.
    """
    bundled_server()  # a missing extra is reported before anything is written
    repo = tempfile.mkdtemp(prefix="colorrt-repo-")
    server = TritonServer(
        repo,
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        log_file=log_file,
        startup_timeout_s=startup_timeout_s,
        remove_repo=True,
    )
    try:
        for model in models:
            write_python_model(repo, model)
    except BaseException:
        server.stop()
        raise
    return server.start()
