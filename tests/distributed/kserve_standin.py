"""A minimal KServe v2 (Triton HTTP protocol) server over ONNX Runtime, for tests only.

It is *not* Triton: it serves one model folder written by ``colorrt export-triton`` (reading its
config.pbtxt with Triton's schema) and answers the four requests :class:`TritonEngine` makes —
model ready, model config, infer (with the binary-tensor extension) — so the client's request
building, dtype handling, batch splitting and contract reading run over real HTTP. It enforces the
config's ``max_batch_size`` like Triton does (a larger batch is an error).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import onnxruntime as ort
from google.protobuf.json_format import MessageToDict

from colorrt.distributed.triton import parse_config

_DTYPES = {"FP32": np.float32, "FP16": np.float16}


class StandInServer:
    """Serves ``model_dir`` (REPO/<name>) on 127.0.0.1 at a free port; ``requests`` counts infers."""

    def __init__(self, model_dir: Path) -> None:
        message = parse_config((model_dir / "config.pbtxt").read_text())
        self.name = message.name
        self.config = MessageToDict(message, preserving_proto_field_name=True)
        self.max_batch = message.max_batch_size
        self.session = ort.InferenceSession(
            str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        self.batches: list[int] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{self.name}"

    def __enter__(self) -> StandInServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def infer(self, body: bytes, header_length: int | None) -> tuple[bytes, int]:
        header = json.loads(body[:header_length] if header_length else body)
        offset, feeds = header_length or len(body), {}
        for tensor in header["inputs"]:
            size = tensor.get("parameters", {}).get("binary_data_size")
            dtype = _DTYPES[tensor["datatype"]]
            if size is None:
                array = np.asarray(tensor["data"], dtype=dtype)
            else:
                array = np.frombuffer(body[offset : offset + size], dtype=dtype)
                offset += size
            feeds[tensor["name"]] = array.reshape(tensor["shape"])
        batch = next(iter(feeds.values())).shape[0]
        if self.max_batch and batch > self.max_batch:
            raise ValueError(f"batch {batch} exceeds max_batch_size {self.max_batch}")
        self.batches.append(batch)
        names = [o["name"] for o in header.get("outputs", [])] or [o.name for o in self.session.get_outputs()]
        results = self.session.run(names, feeds)
        outputs, blobs = [], []
        for name, result in zip(names, results, strict=True):
            blob = np.ascontiguousarray(result).tobytes()
            datatype = {np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16"}[result.dtype]
            outputs.append(
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": list(result.shape),
                    "parameters": {"binary_data_size": len(blob)},
                }
            )
            blobs.append(blob)
        text = json.dumps({"model_name": self.name, "outputs": outputs}).encode()
        return text + b"".join(blobs), len(text)


def _handler(server: StandInServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _model_path(self) -> str | None:
            prefix = f"/v2/models/{server.name}"
            return self.path[len(prefix) :] if self.path.startswith(prefix) else None

        def do_GET(self) -> None:
            rest = self._model_path()
            if rest == "/ready":
                self._reply(200)
            elif rest == "/config":
                self._reply(200, json.dumps(server.config).encode(), {"Content-Type": "application/json"})
            else:
                self._reply(400, json.dumps({"error": f"unknown model or request {self.path}"}).encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self._model_path() != "/infer":
                self._reply(400, json.dumps({"error": f"unknown request {self.path}"}).encode())
                return
            length = self.headers.get("Inference-Header-Content-Length")
            try:
                reply, header_length = server.infer(body, int(length) if length else None)
            except Exception as e:  # the client must see the server's error, as with Triton
                self._reply(400, json.dumps({"error": str(e)}).encode())
                return
            headers = {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(header_length),
            }
            self._reply(200, reply, headers)

    return Handler
