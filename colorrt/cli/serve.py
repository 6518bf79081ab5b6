"""``colorrt serve``: colorization as a service on a Triton Inference Server (``colorrt[serve]``)."""

from __future__ import annotations

import argparse
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from colorrt.cli.common import EXIT_OK

EXAMPLES = """\
inputs: "images", uint8 [N, H, W, C] with C = 1 (grey) or 3 (RGB); one size per request, requests of
different sizes are batched together. Output: "colorized", uint8 [N, H, W, 3], the input's size and L.

call it with curl (KServe v2 JSON; binary tensors are faster):
  curl -s -o /dev/null -w '%{http_code}\\n' localhost:8000/v2/models/colorrt/ready
  curl -s localhost:8000/v2/models/colorrt/infer -H 'Content-Type: application/json' \\
    -d '{"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 2, 2, 1],
                     "data": [0, 64, 128, 255]}]}'
  curl -s localhost:8000/v2/models/colorrt/stats      # batch sizes the server formed

call it with tritonclient (pip install 'tritonclient[http]'; tritonclient.grpc on port 8001 alike):
  import numpy as np, tritonclient.http as http
  from PIL import Image
  client = http.InferenceServerClient("localhost:8000")
  images = np.asarray(Image.open("old.jpg").convert("L"))[None, :, :, None]   # [1, H, W, 1]
  data = http.InferInput("images", list(images.shape), "UINT8")
  data.set_data_from_numpy(images)
  colour = client.infer("colorrt", [data]).as_numpy("colorized")[0]        # [H, W, 3] uint8
  Image.fromarray(colour).save("old_color.png")

with --tensors NAME, colorrt itself is a client of the model's own tensors (pre/postprocessing stay
on the client; Ray actors too):
  colorrt colorize old.jpg -o old_color.png --model http://localhost:8000/NAME
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``colorrt serve``'s flags (named like :class:`colorrt.serve.ServedModel`'s fields)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Serve colorization over HTTP/gRPC (KServe v2) with a real Triton Inference Server:\n"
        "dynamic batching, health, statistics and metrics. Needs pip install 'colorrt[serve]'."
    )
    parser.epilog = EXAMPLES
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    parser.add_argument("--name", default="colorrt", help="served model name (default colorrt)")
    parser.add_argument("--backend", default="auto", help="auto (from the model suffix), onnxruntime, ...")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--contract", default=None, help="contract preset for a model that stores none")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per instance")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: every interface)")
    parser.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    parser.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port (8002)")
    parser.add_argument("--max-batch", type=int, default=8, help="images per batch and request (8)")
    parser.add_argument(
        "--max-delay-ms", type=float, default=5.0, help="how long Triton waits to fill a batch (5 ms)"
    )
    parser.add_argument("--instances", type=int, default=1, help="model instances side by side (1)")
    parser.add_argument("--kind", choices=("cpu", "gpu"), default="cpu", help="instance kind (cpu)")
    parser.add_argument("--max-pixels", type=int, default=None, help="largest image, in pixels")
    parser.add_argument(
        "--tensors", metavar="NAME", default=None, help="also serve the model's own tensors as NAME"
    )
    parser.add_argument("--log", type=Path, default=None, help="server log file (default: temporary)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the server, print where it listens, serve until SIGINT/SIGTERM, then stop it."""
    from colorrt.serve import ServedModel, serve

    images = ServedModel(
        name=args.name,
        model=None if args.model is None else str(args.model),
        backend=args.backend,
        device=args.device,
        contract=args.contract,
        threads=args.threads,
        max_batch=args.max_batch,
        max_delay_ms=args.max_delay_ms,
        instances=args.instances,
        instance_kind=args.kind,
        **({} if args.max_pixels is None else {"max_pixels": args.max_pixels}),
    )
    models = [images] + ([replace(images, name=args.tensors, kind="tensors")] if args.tensors else [])
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = serve(
            models,
            host=args.host,
            http_port=args.http_port,
            grpc_port=args.grpc_port,
            metrics_port=args.metrics_port,
            log_file=args.log,
        )
        try:
            print(_banner(server, models), flush=True)
            _wait(server)
        finally:
            for s in previous:  # a second Ctrl-C must not cut the shutdown short
                signal.signal(s, signal.SIG_IGN)
            server.stop()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print("colorrt serve: stopped", flush=True)
    return EXIT_OK


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _wait(server: Any) -> None:
    """Block until a signal (a clean stop) or until the server dies (an error)."""
    try:
        while server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("colorrt serve: stopping the server", flush=True)
        return
    raise server.error(f"tritonserver stopped unexpectedly (exit code {server.process.returncode})")


def _banner(server: Any, models: list[Any]) -> str:
    host = server.host
    lines = [f"colorrt serve: Triton is ready on {host} (log: {server.log_file})"]
    for model in models:
        what = "images in, colorized images out" if model.kind == "images" else "the model's tensors"
        lines.append(f"  model {model.name!r}: {what}, max batch {model.max_batch}")
    lines += [
        f"  HTTP     http://{host}:{server.http_port}/v2/models/{models[0].name}/infer",
        f"  gRPC     {host}:{server.grpc_port}",
        f"  metrics  http://{host}:{server.metrics_port}/metrics",
        "  stop with Ctrl-C or SIGTERM; `colorrt serve --help` shows how to call it",
    ]
    return "\n".join(lines)
