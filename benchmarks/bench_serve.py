"""Load test of ``colorrt serve``: concurrent clients on loopback, dynamic batching on vs off, one run.

    python benchmarks/bench_serve.py [--clients 4] [--requests 200] [--size 128] [--model PATH]
                                     [--delay-ms 5] [--max-batch 8] [--threads 1] [--out results/serve.json]

A real Triton server (the one bundled in nvidia-pytriton, ``pip install 'colorrt[serve]'``) serves the
model on 127.0.0.1; ``--clients`` threads each send ``--requests`` requests of one grey image
(``--size`` pixels square, KServe v2 binary tensors over HTTP) one after the other, each waiting for
its answer. Modes, each on its own server:

  * batching off: ``max_batch_size`` 1, every request is its own model execution;
  * batching on: up to ``--max-batch`` images per execution, Triton waiting ``--delay-ms`` to fill one.

Reports throughput, p50/p99 latency, the model executions and their mean size (from Triton's
statistics), and the resident memory (RSS) of the server's processes (tritonserver and its Python
backend stub) after warm-up, halfway and at the end. Default model: the bundled one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

WARMUP_REQUESTS = 5  # per client, before the clock starts
CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200, help="requests per client")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="engine threads of the one model instance")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = [run_mode(args, batching) for batching in (False, True)]
    columns = [
        "mode",
        "images/s",
        "p50 ms",
        "p99 ms",
        "executions",
        "mean batch",
        "RSS MB before",
        "RSS MB half",
        "RSS MB after",
    ]
    print_table(rows, columns)
    facts = {
        "cpu_flags": cpu_flags(),
        "load_average": {"start": load_before, "end": os.getloadavg()},
        **server_facts(),
    }
    settings = {
        k: getattr(args, k) for k in ("clients", "requests", "size", "delay_ms", "max_batch", "threads")
    }
    path = write_results(
        "serve", rows, args.out, settings={**settings, "model": args.model or "bundled"}, **facts
    )
    print(f"wrote {path}")
    return 0


def run_mode(args: argparse.Namespace, batching: bool) -> dict[str, Any]:
    """One server, warm-up, then ``clients`` x ``requests`` timed requests."""
    import numpy as np

    from colorrt.serve import ServedModel, serve

    ports = free_ports(3)
    served = ServedModel(
        model=args.model,
        threads=args.threads,
        max_batch=args.max_batch if batching else 1,
        max_delay_ms=args.delay_ms if batching else 0,
    )
    with serve(
        [served], host="127.0.0.1", http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2]
    ) as server:
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (1, args.size, args.size, 1), np.uint8)
        load(server, image, args.clients, WARMUP_REQUESTS)
        rss = [server_rss_mb(server)]
        stats_before = stats(server)
        latencies, seconds = [], 0.0
        for half in (args.requests // 2, args.requests - args.requests // 2):  # RSS between halves too
            start = time.perf_counter()
            latencies += load(server, image, args.clients, half)
            seconds += time.perf_counter() - start
            rss.append(server_rss_mb(server))
        stats_after = stats(server)
        with urllib.request.urlopen(f"{server.http_url}/v2", timeout=30) as reply:
            triton = json.load(reply)["version"]
    executions = stats_after["execution_count"] - stats_before["execution_count"]
    images = stats_after["inference_count"] - stats_before["inference_count"]
    return {
        "mode": f"batching on (max {args.max_batch}, {args.delay_ms:g} ms)" if batching else "batching off",
        "images/s": images / seconds,
        "p50 ms": float(np.percentile(latencies, 50) * 1e3),
        "p99 ms": float(np.percentile(latencies, 99) * 1e3),
        "executions": executions,
        "mean batch": images / max(executions, 1),
        "RSS MB before": rss[0],
        "RSS MB half": rss[1],
        "RSS MB after": rss[2],
        "requests": len(latencies),
        "seconds": seconds,
        "triton": triton,
    }


def load(server: Any, image: Any, clients: int, requests: int) -> list[float]:
    """``clients`` threads, each sending ``requests`` requests in turn; every request's latency."""
    import tritonclient.http as http

    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[BaseException] = []
    start = threading.Barrier(clients)

    def client(index: int) -> None:
        connection = http.InferenceServerClient(f"127.0.0.1:{server.http_port}", network_timeout=120)
        data = http.InferInput("images", list(image.shape), "UINT8")
        data.set_data_from_numpy(image)
        start.wait()
        try:
            for _ in range(requests):
                began = time.perf_counter()
                connection.infer("colorrt", [data]).as_numpy("colorized")
                latencies[index].append(time.perf_counter() - began)
        except BaseException as e:  # reported after the run: a benchmark with failures has no result
            failures.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} client(s) failed: {failures[0]}") from failures[0]
    return [latency for per_client in latencies for latency in per_client]


def stats(server: Any) -> dict[str, int]:
    with urllib.request.urlopen(f"{server.http_url}/v2/models/colorrt/stats", timeout=30) as reply:
        model = json.load(reply)["model_stats"][0]
    return {key: int(model[key]) for key in ("inference_count", "execution_count")}


def server_rss_mb(server: Any) -> float:
    """Resident memory of the server's process group (tritonserver and its backend stubs), MB."""
    group, total_kb = server.process.pid, 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            pid = int(status.parent.name)
            if os.getpgid(pid) != group:
                continue
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            total_kb += int(fields.get("VmRSS", "0 kB").split()[0])
        except (OSError, ValueError):
            continue
    return total_kb / 1024


def free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cpu_flags() -> list[str]:
    """The vector-instruction flags of this CPU that matter for inference speed."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    present = set(line.split(":", 1)[-1].split())
    return [flag for flag in CPU_FLAGS if flag in present]


def server_facts() -> dict[str, Any]:
    from importlib.metadata import version

    facts: dict[str, Any] = {}
    for package in ("nvidia-pytriton", "tritonclient"):
        try:
            facts[package] = version(package)
        except Exception:  # not installed: the fact is just missing
            pass
    return facts


if __name__ == "__main__":
    sys.exit(main())
