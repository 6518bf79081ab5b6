"""Ray image path: colorize a folder of images on Ray actors, each holding one Runtime."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colorrt.distributed.ray.cluster import (
    RuntimeSpec,
    absolute,
    check_model,
    map_options,
    quiet_progress,
    ray_errors,
    ray_session,
    ray_specs,
)
from colorrt.errors import InputError
from colorrt.runtime.runtime import BatchReport, Runtime


class ImageColorizer:
    """Ray Data actor: colorizes files named by the rows of a batch, writing them under ``dst_dir``.

    Batches are ``{"index": int array, "path": relative names}``; returns ``{"index", "error"}``
    with an empty error for every file written.
    """

    def __init__(self, runtime: RuntimeSpec, src_dir: str, dst_dir: str) -> None:
        self.runtime = runtime.build()
        self.src_dir, self.dst_dir = Path(src_dir), Path(dst_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [str(name) for name in batch["path"]]
        pairs = [(self.src_dir / name, self.dst_dir / name) for name in names]
        errors = colorize_files(self.runtime, pairs)
        return {"index": np.asarray(batch["index"]), "error": np.array(errors, dtype=object)}


def colorize_files(runtime: Runtime, pairs: Sequence[tuple[Path, Path]]) -> list[str]:
    """Colorize ``(src, dst)`` files with one runtime; one entry per pair: "" or why it failed.

    :meth:`Runtime.colorize_pairs` with ``isolate_failures``: a file the model fails on is listed
    like an unreadable one instead of failing the whole Ray block.
    """
    report = runtime.colorize_pairs(pairs, isolate_failures=True)
    why = {src: message for src, message in report.failed}
    return [why.get(src, "") for src, _ in pairs]


def colorize_folder_ray(
    model: str | os.PathLike[str] | None,
    src_dir: str | os.PathLike[str],
    dst_dir: str | os.PathLike[str],
    **options: Any,
) -> BatchReport:
    """Colorize every image under ``src_dir`` into ``dst_dir`` (same relative names) on Ray.

    Same outputs and the same report as :meth:`Runtime.colorize_folder`: unreadable or unwritable
    files are listed in ``report.failed`` and the run goes on. ``options``: where and how wide to
    run and what each worker builds, see :func:`ray_specs`.
    """
    from colorrt.runtime.runtime import check_distinct, images_outside

    cluster, spec = ray_specs(model, **options)
    src_dir, dst_dir = absolute(src_dir), absolute(dst_dir)
    check_distinct(src_dir, dst_dir)
    if dst_dir.exists() and not dst_dir.is_dir():
        raise InputError(f"output {dst_dir} is a file, but the input is a folder", "pass an output folder")
    files = images_outside(src_dir, dst_dir)
    report, start = BatchReport(), time.perf_counter()
    rows = _image_rows(files, src_dir, dst_dir, report)
    if rows:
        check_model(spec)
        with ray_session(cluster.address) as ray, ray_errors(ray):
            quiet_progress(ray)
            blocks = max(1, math.ceil(len(rows) / spec.batch_size))
            dataset = ray.data.from_items(rows, override_num_blocks=blocks)
            results = dataset.map_batches(
                ImageColorizer,
                fn_constructor_kwargs={
                    "runtime": cluster.worker_runtime(spec),
                    "src_dir": str(src_dir),
                    "dst_dir": str(dst_dir),
                },
                batch_size=spec.batch_size,
                **map_options(ray, cluster, spec),
            ).take_all()
        for row in sorted(results, key=lambda r: int(r["index"])):
            if row["error"]:
                report.failed.append((src_dir / files[int(row["index"])], str(row["error"])))
            else:
                report.done += 1
    report.failed.sort()
    report.seconds = time.perf_counter() - start
    return report


def _image_rows(files: list[Path], src_dir: Path, dst_dir: Path, report: BatchReport) -> list[dict]:
    """One row per file; an output that would land on an input file fails here, before any work."""
    inputs = {(src_dir / f).resolve() for f in files}
    rows = []
    for index, name in enumerate(files):
        if (dst_dir / name).resolve() in inputs:
            report.failed.append((src_dir / name, f"output {dst_dir / name} would overwrite an input file"))
            continue
        rows.append({"index": index, "path": name.as_posix()})
    return rows
