"""Published checkpoints colorrt recognises by their SHA-256 (no torch needed).

An export records its weights' SHA-256; ``colorrt info`` names the published file it came from.
A file named like a published checkpoint whose size or hash differs gets a
:class:`CheckpointWarning` (most often a truncated download).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from colorrt.digest import file_sha256


class CheckpointWarning(UserWarning):
    """A weights file is named like a published checkpoint but is not that file."""

    noun = "checkpoint warnings"


@dataclass(frozen=True)
class KnownCheckpoint:
    """A published checkpoint: file name stem, architecture, size in bytes, SHA-256, origin, licence."""

    name: str
    arch: str
    size: int
    sha256: str
    origin: str
    licence: str

    def describe(self) -> str:
        return f"official {self.name} ({self.origin}; {self.licence})"


KNOWN_CHECKPOINTS: tuple[KnownCheckpoint, ...] = (
    KnownCheckpoint(
        name="colorization_release_v2",
        arch="eccv16",
        size=128_976_165,
        sha256="9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9",
        origin="Zhang et al. ECCV16, richzhang/colorization",
        licence="BSD-2-Clause",
    ),
)


def identify(sha256: str) -> KnownCheckpoint | None:
    """The published checkpoint with this SHA-256 (hex, with or without a ``sha256:`` prefix), or None."""
    digest = sha256.removeprefix("sha256:").lower()
    return next((k for k in KNOWN_CHECKPOINTS if k.sha256 == digest), None)


def check_published(path: str | os.PathLike[str]) -> KnownCheckpoint | None:
    """The published checkpoint ``path`` is, or None; warns when the name says one but the file differs."""
    path = Path(path)
    named = next((k for k in KNOWN_CHECKPOINTS if path.name.startswith(k.name)), None)
    size = path.stat().st_size
    if named is None or size != named.size:
        if named is not None:
            warnings.warn(_mismatch(path, named, f"{size:,} bytes"), CheckpointWarning, stacklevel=2)
        return None  # another file, or a wrong size: no need to hash it
    digest = file_sha256(path)
    if digest != named.sha256:
        warnings.warn(_mismatch(path, named, f"sha256 {digest[:12]}…"), CheckpointWarning, stacklevel=2)
        return None
    return named


def _mismatch(path: Path, known: KnownCheckpoint, got: str) -> str:
    return (
        f"{path.name} is named like the published {known.name} ({known.size:,} bytes, sha256 "
        f"{known.sha256[:12]}…) but is {got}: a truncated or altered download? Download it again"
    )
