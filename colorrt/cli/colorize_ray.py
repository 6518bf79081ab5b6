"""``colorrt colorize ... --ray``: a folder of images or a video on a Ray cluster."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from colorrt.cli.common import EXIT_OK, EXIT_PARTIAL
from colorrt.errors import InputError
from colorrt.io.video import VIDEO_SUFFIXES

VIDEO_FLAGS = ("codec", "crf", "bitrate", "pix_fmt", "preset", "temporal", "scene_threshold")


def _video_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The video flags ``colorrt colorize`` was given (those it has), for :func:`colorize_video_ray`."""
    return {name: getattr(args, name) for name in VIDEO_FLAGS if getattr(args, name, None) is not None}


def run(args: argparse.Namespace) -> int:
    """``colorrt colorize INPUT -o OUTPUT --ray``: a folder of images or a video on Ray; exit code."""
    from colorrt.distributed.ray import colorize_folder_ray, colorize_video_ray

    if getattr(args, "pages", False) or getattr(args, "reference", None) is not None:
        raise InputError("--ray does not run the comic page pipeline yet", "drop --ray, or drop --pages")
    common = {
        "address": args.address,
        "workers": args.workers,
        "backend": args.backend,
        "device": args.device,
        "batch_size": args.batch_size,
        "contract": args.contract,
        "threads": args.threads,
    }
    if args.input.is_dir():
        report = colorize_folder_ray(args.model, args.input, args.output, **common)
        if not args.quiet:
            rate = report.done / report.seconds if report.seconds > 0 else 0.0
            print(
                f"colorized {report.done} of {report.total} images into {args.output} ({rate:.1f} images/s)"
            )
        for path, message in report.failed:
            print(f"  {path}: {message}", file=sys.stderr)
        return EXIT_PARTIAL if report.failed else EXIT_OK
    if args.input.suffix.lower() in VIDEO_SUFFIXES:
        output = args.output / args.input.name if args.output.is_dir() else args.output
        if getattr(args, "resume", False):
            raise InputError("--resume is not available with --ray", "run again without --resume")
        if getattr(args, "decoder", "pyav") != "pyav":
            raise InputError("--ray decodes with PyAV on the workers", "drop --decoder, or drop --ray")
        report = colorize_video_ray(args.model, args.input, output, **common, **_video_flags(args))
        if not args.quiet:
            print(f"wrote {output} ({report.frames} frames, {report.fps:.1f} frames/s)")
        return EXIT_OK
    raise InputError(
        f"--ray colorizes a folder of images or a video; {args.input} is neither",
        "colorize a single image without --ray",
    )
