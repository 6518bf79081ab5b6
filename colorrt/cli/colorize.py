"""``colorrt colorize``: file -> file, folder -> folder, pages -> pages, video -> video."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from colorrt.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL
from colorrt.errors import InputError
from colorrt.io.video import VIDEO_SUFFIXES
from colorrt.runtime.options import DEFAULT_TEMPORAL

if TYPE_CHECKING:
    from colorrt.runtime import Runtime


def add_command(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "colorize",
        help="colorize an image, a folder of images, comic pages (folder/CBZ) or a video",
        description="Colorize an image file, a folder of images (written with the same relative names) "
        "or a video. Outputs are written atomically; inputs are never modified.",
    )
    sub.add_argument("input", type=Path, help="image file, folder or video")
    sub.add_argument("-o", "--output", type=Path, required=True, help="output file or folder")
    sub.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    sub.add_argument(
        "--backend", default="auto", help="auto (from the model suffix), onnxruntime, tensorrt, torch"
    )
    sub.add_argument("--device", default="auto", help="auto, cpu or cuda")
    sub.add_argument("--contract", default=None, help="contract preset for a model that stores none")
    sub.add_argument("--batch-size", type=int, default=4, help="images per inference call (default 4)")
    sub.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    video = sub.add_argument_group("video")
    video.add_argument("--codec", default=None, help="h264 (default for .mp4/.mkv), hevc, ffv1, prores, vp9")
    video.add_argument(
        "--crf", type=int, default=None, help="constant rate factor (quality) for x264/x265/vp9"
    )
    video.add_argument("--bitrate", default=None, help="target bitrate, e.g. 8M or 2500k")
    video.add_argument("--pix-fmt", default=None, help="output pixel format, e.g. yuv420p, yuv444p10le")
    video.add_argument(
        "--preset", default=None, help="h264/hevc speed preset: ultrafast .. veryslow (default medium)"
    )
    video.add_argument(
        "--temporal",
        type=float,
        default=DEFAULT_TEMPORAL,
        help=f"chroma smoothing over time, 0 (off) .. <1 (default {DEFAULT_TEMPORAL})",
    )
    video.add_argument("--resume", action="store_true", help="continue an interrupted job")
    video.add_argument("--decoder", default="pyav", choices=("pyav", "dali"), help="video decoder")
    pages = sub.add_argument_group("comic / manga pages")
    pages.add_argument("--pages", action="store_true", help="treat a folder as comic pages (panel pipeline)")
    pages.add_argument(
        "--reference", type=Path, default=None, help="colour reference image or palette .json for pages"
    )
    pages.add_argument("--rtl", action="store_true", help="right-to-left panel order (manga)")
    pages.add_argument("--force", action="store_true", help="recolour pages that are already in colour")
    pages.add_argument("--format", default=None, help="output image format for pages, e.g. png")
    cluster = sub.add_argument_group("cluster (Ray Data; pip install 'colorrt[scale]')")
    cluster.add_argument("--ray", action="store_true", help="colorize a folder or a video on a Ray cluster")
    cluster.add_argument("--address", default=None, help="Ray address (default: the running or a local one)")
    cluster.add_argument("--workers", type=int, default=2, help="Ray actors, one Runtime each (default 2)")
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    sub.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """``colorrt colorize``: file → file, folder → folder, video → video."""
    from colorrt.pages import is_page_job
    from colorrt.runtime import Runtime

    if not args.input.exists():
        raise InputError(f"no such file or folder: {args.input}", "check the path")
    _check_folder_output(args.input, args.output)
    if args.ray:
        from colorrt.cli import colorize_ray

        return colorize_ray.run(args)
    runtime = Runtime(
        args.model,
        backend=args.backend,
        device=args.device,
        batch_size=args.batch_size,
        contract=args.contract,
        threads=args.threads,
    )
    with runtime:
        if is_page_job(
            args.input,
            args.output,
            pages=args.pages,
            reference=args.reference,
            rtl=args.rtl,
            force=args.force,
        ):
            return _colorize_pages(runtime, args)
        if args.input.is_dir():
            return _colorize_folder(runtime, args)
        output = args.output / args.input.name if args.output.is_dir() else args.output
        if _is_video_job(args.input, output):
            return _colorize_video(runtime, args.input, output, args)
        runtime.colorize_file(args.input, output)
        if not args.quiet:
            print(f"wrote {output}")
    return EXIT_OK


def _check_folder_output(src: Path, dst: Path) -> None:
    """A folder input writes a folder: refuse an output named like an image or video file."""
    from colorrt.io.images import IMAGE_SUFFIXES

    if src.is_dir() and not dst.is_dir() and dst.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise InputError(
            f"{src} is a folder, so the output is a folder too, but {dst} is named like a file",
            f"pass a folder name, e.g. -o {dst.with_suffix('')}/",
        )


def _is_video_job(src: Path, dst: Path) -> bool:
    """A video input, or an input that is no image file going to a video output (FFmpeg reads it)."""
    from colorrt.io.images import IMAGE_SUFFIXES

    if src.suffix.lower() in VIDEO_SUFFIXES:
        return True
    return dst.suffix.lower() in VIDEO_SUFFIXES and src.suffix.lower() not in IMAGE_SUFFIXES


def _colorize_folder(runtime: Runtime, args: argparse.Namespace) -> int:
    report = runtime.colorize_folder(args.input, args.output, progress=not args.quiet)
    if not args.quiet:
        rate = report.done / report.seconds if report.seconds > 0 else 0.0
        print(f"colorized {report.done} of {report.total} images into {args.output} ({rate:.1f} images/s)")
    if report.failed:
        print(f"colorrt: {len(report.failed)} file(s) failed:", file=sys.stderr)
        for path, message in report.failed:
            print(f"  {path}: {message}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _colorize_pages(runtime: Runtime, args: argparse.Namespace) -> int:
    report = runtime.colorize_pages(
        args.input,
        args.output,
        reference=args.reference,
        rtl=args.rtl,
        force=args.force,
        format=args.format,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(report.summary())
    for name, message in report.failed:
        print(f"  {name}: {message}", file=sys.stderr)
    return EXIT_PARTIAL if report.failed else EXIT_OK


def _colorize_video(runtime: Runtime, src: Path, dst: Path, args: argparse.Namespace) -> int:
    try:
        report = runtime.colorize_video(
            src,
            dst,
            codec=args.codec,
            crf=args.crf,
            bitrate=args.bitrate,
            pix_fmt=args.pix_fmt,
            preset=args.preset,
            temporal=args.temporal,
            resume=args.resume,
            decoder=args.decoder,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print("colorrt: interrupted; finished segments are kept: continue with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not report.complete:  # report.warnings were shown as they were raised (one line per kind)
        print(f"colorrt: stopped early; partial file {report.partial}; resume with --resume", file=sys.stderr)
        return EXIT_PARTIAL
    if not args.quiet:
        print(
            f"wrote {dst}: {report.frames} frames, {report.fps:.1f} frames/s, "
            f"{len(report.scene_cuts)} scene cuts"
        )
    return EXIT_OK
