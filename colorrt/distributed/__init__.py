"""Scaling past one machine on existing distributed engines (no cluster code of our own).

* :mod:`colorrt.distributed.ray`: Ray Data adapter; one :class:`~colorrt.Runtime` per actor colorizes
  folders of images/pages (same relative names) and films (segments split at scene cuts, joined by
  stream copy with the original audio). Needs ``pip install 'colorrt[scale]'``.
* :mod:`colorrt.distributed.triton`: export a model to an NVIDIA Triton Inference Server model
  repository, and the ``triton`` engine backend that runs a model served by Triton.

Nothing here is imported by ``import colorrt``; Ray and tritonclient load only when used.
"""

from __future__ import annotations

__all__ = ["colorize_folder_ray", "colorize_video_ray", "export_triton"]


def __getattr__(name: str):  # lazy: importing the package must not import Ray
    if name in ("colorize_folder_ray", "colorize_video_ray"):
        from colorrt.distributed import ray as _ray

        return getattr(_ray, name)
    if name == "export_triton":
        from colorrt.distributed.triton import export_triton

        return export_triton
    raise AttributeError(f"module 'colorrt.distributed' has no attribute {name!r}")
