"""Start and stop the ``tritonserver`` that the ``nvidia-pytriton`` wheel bundles.

The wheel carries a genuine Triton Inference Server with its Python backend and one backend stub
per Python version. colorrt runs that binary on a model repository of its own (see
:mod:`colorrt.serve.repository`) rather than through PyTriton's ``Triton.bind``: PyTriton's proxy
model hands results to the stub as NumPy arrays, which the bundled stub misreads under NumPy 2.

Two things make the stub run the same Python as the caller:

* ``LD_LIBRARY_PATH`` starts with the running interpreter's own libpython folder (from
  :mod:`sysconfig`). The stub is linked against ``libpython3.X.so``, and the system's copy of
  another 3.X build fails inside multiprocessing (``'_thread.RLock' object has no attribute
  '_recursion_count'``).
* ``PATH`` starts with the running interpreter's folder, where the stub's embedded Python finds its
  prefix, so it imports colorrt and its dependencies from the same environment (virtual ones too).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from colorrt.errors import BackendError, MissingDependencyError

EXTRA = "serve"
LOG_TAIL_LINES = 40  # server log lines quoted when it fails to start


@dataclass(frozen=True)
class ServerFiles:
    """Where the bundled server's pieces are."""

    binary: Path  # tritonserver
    libraries: Path  # the shared libraries it needs
    python_backend: Path  # libtriton_python.so + triton_python_backend_utils.py
    stub: Path  # triton_python_backend_stub for the running Python version
    caches: Path


def bundled_server() -> ServerFiles:
    """The tritonserver of the installed ``nvidia-pytriton`` wheel (MissingDependencyError without)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("nvidia-pytriton", EXTRA, "serving models with Triton (colorrt serve)")
    root = Path(spec.origin).parent
    server = root / "tritonserver"
    libraries = root.parent / "nvidia_pytriton.libs"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    files = ServerFiles(
        binary=server / "bin" / "tritonserver",
        libraries=libraries if libraries.is_dir() else server / "external_libs",
        python_backend=server / "backends" / "python",
        stub=server / "python_backend_stubs" / version / "triton_python_backend_stub",
        caches=server / "caches",
    )
    if not files.stub.is_file():
        have = sorted(p.name for p in (server / "python_backend_stubs").glob("*"))
        raise BackendError(
            f"nvidia-pytriton has no Python-backend stub for Python {version} (it has {', '.join(have)})",
            "run colorrt serve with one of those Python versions",
        )
    if not files.binary.is_file():
        raise BackendError(f"nvidia-pytriton is installed without its server ({files.binary})")
    return files


def libpython_dir() -> Path | None:
    """The folder holding the running interpreter's shared libpython (None: linked statically)."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return None
    name = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    for folder in (sysconfig.get_config_var("LIBDIR"), Path(sys.base_prefix) / "lib"):
        if folder and name and (Path(folder) / name).exists():
            return Path(folder)
    return None


def server_environment(files: ServerFiles, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the server process: this Python's libpython and folder first."""
    env = dict(os.environ if base is None else base)
    libraries = [str(p) for p in (libpython_dir(), files.libraries) if p is not None]
    if env.get("LD_LIBRARY_PATH"):
        libraries.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries)
    env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH")) if p)
    return env


class TritonServer:
    """A ``tritonserver`` process serving ``repo`` on HTTP, gRPC and metrics ports.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``host`` is the address the
    endpoints bind (``0.0.0.0``: every interface). :meth:`start` returns once every model is ready
    and raises BackendError quoting the server log when the server stops or does not get ready.
    ``remove_repo``: :meth:`stop` deletes the repository too (one written for this server alone).
    """

    def __init__(
        self,
        repo: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        http_port: int = 8000,
        grpc_port: int = 8001,
        metrics_port: int = 8002,
        log_file: str | os.PathLike[str] | None = None,
        startup_timeout_s: float = 180.0,
        exit_timeout_s: int = 10,
        remove_repo: bool = False,
    ) -> None:
        self.repo = Path(repo).resolve()
        self.host = host
        self.http_port, self.grpc_port, self.metrics_port = http_port, grpc_port, metrics_port
        self.startup_timeout_s = startup_timeout_s
        self.exit_timeout_s = exit_timeout_s
        self.remove_repo = remove_repo  # a repository written for this server alone
        self._log_file = Path(log_file) if log_file is not None else None
        self._workdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def local_host(self) -> str:
        """The address a client on this machine reaches the server at."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    @property
    def http_url(self) -> str:
        return f"http://{self.local_host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self.local_host}:{self.grpc_port}"

    @property
    def log_file(self) -> Path:
        """The server's log (in a temporary folder removed by :meth:`stop` unless one was given)."""
        if self._log_file is not None:
            return self._log_file
        if self._workdir is None:
            raise BackendError("the server has not been started")
        return self._workdir / "tritonserver.log"

    def start(self) -> TritonServer:
        """Launch the server and wait until its models are ready."""
        if self.process is not None:
            raise BackendError("this Triton server is already running")
        files = bundled_server()
        self._workdir = Path(tempfile.mkdtemp(prefix="colorrt-triton-"))
        backends = self._workdir / "backends"
        shutil.copytree(
            files.python_backend, backends / "python", ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copy2(files.stub, backends / "python" / files.stub.name)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [str(files.binary), *self._arguments(backends, files.caches)],
                env=server_environment(files),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._workdir,
                start_new_session=True,  # a terminal's Ctrl-C reaches colorrt, which stops the server
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _arguments(self, backends: Path, caches: Path) -> list[str]:
        shm_prefix = f"colorrt_{os.getpid()}_{secrets.token_hex(4)}_"  # servers side by side never share
        return [
            f"--model-repository={self.repo}",
            f"--backend-directory={backends}",
            f"--cache-directory={caches}",
            f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            "--model-control-mode=none",
            "--exit-on-error=true",
            "--strict-readiness=true",
            f"--exit-timeout-secs={self.exit_timeout_s}",
        ]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self.error(f"tritonserver stopped while starting (exit code {self.process.returncode})")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise self.error(f"tritonserver was not ready after {self.startup_timeout_s:.0f} s")

    def error(self, what: str) -> BackendError:
        """An error saying ``what``, with the end of the server log as its hint."""
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            lines = []
        hint = f"the server log ({self.log_file}) ends with:\n" + "\n".join(lines)
        if libpython_dir() is None:
            hint += (
                "\nthis Python has no shared libpython; the stub then loads the system's, which may not fit"
            )
        return BackendError(what, hint)

    def stop(self) -> None:
        """Stop the server (SIGINT, then SIGKILL after its exit timeout) and remove its files."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # Triton unloads its models and exits
                try:
                    process.wait(timeout=self.exit_timeout_s + 10)
                except subprocess.TimeoutExpired:
                    pass
            try:  # the process group: the server and its backend stubs, all started here
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        if self.remove_repo:
            shutil.rmtree(self.repo, ignore_errors=True)

    def __enter__(self) -> TritonServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
