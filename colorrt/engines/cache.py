"""Engine cache: TensorRT plans keyed by everything that changes them (see ``tensorrt.keys.cache_key``).

Each entry is ``<key>.plan`` with its facts ``<key>.plan.json`` (written last, so an entry counts
only once both are complete). Writes are atomic (temporary file + ``os.replace``). An entry whose
plan does not match the size and SHA-256 recorded in its facts is treated as corrupt: it is
removed and the caller rebuilds. An unwritable cache folder falls back to a per-user temporary
folder with a warning.

Folder: ``COLORRT_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/colorrt/engines`` (default
``~/.cache/colorrt/engines``).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import tempfile
import warnings
from pathlib import Path

from colorrt.atomic import write_bytes
from colorrt.digest import file_sha256
from colorrt.engines.tensorrt.facts import EngineFacts, read_facts, sidecar_path, write_facts
from colorrt.errors import BackendError, ColorRTError

ENV_VAR = "COLORRT_CACHE_DIR"
_KEY = re.compile(r"[0-9a-f]{16,128}")


class CacheWarning(UserWarning):
    """The engine cache could not be used as configured (folder unwritable, entry corrupt)."""


def default_cache_dir() -> Path:
    """``$COLORRT_CACHE_DIR``, else ``$XDG_CACHE_HOME/colorrt/engines``, else ``~/.cache/colorrt/engines``."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "colorrt" / "engines"


def fallback_cache_dir() -> Path:
    """Per-user folder under the system temporary directory, used when the cache folder is unwritable."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"colorrt-engines-{re.sub(r'[^A-Za-z0-9_.-]', '_', user)}"


class EngineCache:
    """TensorRT plans and their facts, stored by cache key.

    Args:
        folder: cache folder; default :func:`default_cache_dir`. When it cannot be created or
            written, a :class:`CacheWarning` is issued and :func:`fallback_cache_dir` is used.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.requested = Path(folder).expanduser() if folder is not None else default_cache_dir()
        self.folder = self.requested
        self.fallback_reason: str | None = None
        problem = _writable_problem(self.requested)
        if problem:
            self._fall_back(problem)

    def plan_path(self, key: str) -> Path:
        """Where the plan of ``key`` is (or would be) stored."""
        if not _KEY.fullmatch(key):
            raise BackendError(f"engine cache key must be a lowercase hex digest, got {key!r}")
        return self.folder / f"{key}.plan"

    def get(self, key: str) -> Path | None:
        """The cached plan of ``key``, or None when absent or corrupt (a corrupt entry is removed)."""
        plan = self.plan_path(key)
        if not plan.is_file():
            return None
        problem = self._entry_problem(key, plan)
        if problem is None:
            return plan
        warnings.warn(
            f"engine cache entry {plan} is unusable ({problem}); it will be rebuilt",
            CacheWarning,
            stacklevel=2,
        )
        self.invalidate(key)
        return None

    def facts(self, key: str) -> EngineFacts | None:
        """The facts of a valid entry, else None."""
        plan = self.get(key)
        return read_facts(plan) if plan is not None else None

    def put(self, key: str, plan_bytes: bytes, facts: EngineFacts) -> Path:
        """Store a plan and its facts atomically (facts last); returns the plan's path.

        The facts are completed with the plan's size, SHA-256 and the key. If the folder turns out
        unwritable, the entry goes to the fallback folder with a :class:`CacheWarning`.
        """
        facts = facts.replace(
            plan_sha256=hashlib.sha256(plan_bytes).hexdigest(), plan_size=len(plan_bytes), cache_key=key
        )
        try:
            return self._write(key, plan_bytes, facts)
        except OSError as e:
            if self.folder == fallback_cache_dir():
                raise BackendError(f"cannot write to the engine cache {self.folder}: {e}") from e
            self._fall_back(f"writing failed: {e}")
            return self._write(key, plan_bytes, facts)

    def invalidate(self, key: str) -> None:
        """Remove the entry of ``key`` (missing files are fine)."""
        plan = self.plan_path(key)
        for path in (sidecar_path(plan), plan):
            try:
                path.unlink(missing_ok=True)
            except OSError as e:
                warnings.warn(f"cannot remove engine cache file {path}: {e}", CacheWarning, stacklevel=2)

    def timing_cache_path(self, trt_version: str, gpu_name: str) -> Path:
        """The TensorRT timing cache file shared by builds with this TensorRT version on this GPU model."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{trt_version}-{gpu_name}").strip("_")
        return self.folder / f"timing-{slug}.cache"

    def _write(self, key: str, plan_bytes: bytes, facts: EngineFacts) -> Path:
        plan = self.plan_path(key)
        plan.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(plan, plan_bytes)
        write_facts(plan, facts)
        return plan

    def _entry_problem(self, key: str, plan: Path) -> str | None:
        try:
            facts = read_facts(plan)
        except ColorRTError as e:
            return e.what
        size = plan.stat().st_size
        if facts.cache_key != key:
            return f"its facts belong to key {facts.cache_key[:12] or '(none)'}"
        if facts.plan_size != size:
            return f"plan is {size} bytes, its facts say {facts.plan_size}"
        if facts.plan_sha256 != file_sha256(plan):
            return "plan bytes do not match the SHA-256 in its facts"
        return None

    def _fall_back(self, problem: str) -> None:
        fallback = fallback_cache_dir()
        fallback_problem = _writable_problem(fallback)
        if fallback_problem:
            raise BackendError(
                f"engine cache folder {self.requested} is unusable ({problem}) and so is the fallback "
                f"{fallback} ({fallback_problem})",
                f"set {ENV_VAR} to a writable folder",
            )
        warnings.warn(
            f"engine cache folder {self.requested} is not writable ({problem}); using {fallback} instead "
            f"(set {ENV_VAR} to a writable folder to keep engines between sessions)",
            CacheWarning,
            stacklevel=3,
        )
        self.folder = fallback
        self.fallback_reason = problem


def _writable_problem(folder: Path) -> str | None:
    """None when ``folder`` exists (or can be created) and a file can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    return None
