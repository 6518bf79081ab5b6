"""``colorrt colorize``: file -> file, folder -> folder, pages -> pages, video -> video."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from colorrt.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL
from colorrt.errors import InputError
from colorrt.io.video import VIDEO_SUFFIXES
from colorrt.pages.palette import DEFAULT_REFERENCE_STRENGTH, check_reference_strength
from colorrt.runtime import DEFAULT_TEMPORAL, VideoOptions

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
        "--detector", type=Path, default=None, help="object detector .onnx for a model bundle folder"
    )
    sub.add_argument(
        "--backend", default="auto", help="auto (from the model suffix), onnxruntime, tensorrt, torch"
    )
    sub.add_argument("--device", default="auto", help="auto, cpu or cuda")
    sub.add_argument("--contract", default=None, help="contract preset for a model that stores none")
    sub.add_argument("--batch-size", type=int, default=4, help="images per inference call (default 4)")
    sub.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    _add_knobs(sub)
    _add_video(sub)
    _add_pages(sub)
    _add_cluster(sub)
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    sub.set_defaults(handler=run)


def _add_video(sub: argparse.ArgumentParser) -> None:
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
    video.add_argument("--decoder", default="pyav", choices=("pyav", "dali"), help="video decoder")


def _add_pages(sub: argparse.ArgumentParser) -> None:
    pages = sub.add_argument_group("comic / manga pages")
    pages.add_argument("--pages", action="store_true", help="treat a folder as comic pages (panel pipeline)")
    pages.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="colour reference image or palette .json for pages; for a model that takes a reference "
        "palette as input (comicolorization), the image it paints with, for images, pages and films",
    )
    pages.add_argument(
        "--reference-strength",
        type=float,
        default=None,
        metavar="S",
        help="how far --reference pulls the colours: 0 not at all .. 1 fully "
        f"(default {DEFAULT_REFERENCE_STRENGTH:g}, measured: docs/pages.md)",
    )
    pages.add_argument("--rtl", action="store_true", help="right-to-left panel order (manga)")
    pages.add_argument("--force", action="store_true", help="recolour pages that are already in colour")


def _add_cluster(sub: argparse.ArgumentParser) -> None:
    cluster = sub.add_argument_group("cluster (Ray Data; pip install 'colorrt[scale]')")
    cluster.add_argument("--ray", action="store_true", help="colorize a folder or a video on a Ray cluster")
    cluster.add_argument("--address", default=None, help="Ray address (default: the running or a local one)")
    cluster.add_argument("--workers", type=int, default=2, help="Ray actors, one Runtime each (default 2)")


def _add_knobs(sub: argparse.ArgumentParser) -> None:
    """Flags for every kind of input: how the model sees it, how strong the colour, what is written."""
    sub.add_argument(
        "--render-size",
        type=int,
        default=None,
        metavar="N",
        help="longest side (pixels) of the picture the model sees (DeOldify's render_factor); smaller "
        "is faster, larger keeps finer colour detail (default: the model's; see docs/knobs.md)",
    )
    sub.add_argument(
        "--strength",
        type=float,
        default=1.0,
        metavar="S",
        help="chroma strength: 0 grey, 1 the model's colours (default), up to 2 stronger ones",
    )
    sub.add_argument(
        "--gpu-path",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --device cuda: pre/post-processing on the GPU too (default: when CuPy and the "
        "model allow it); --no-gpu-path keeps them on the CPU",
    )
    sub.add_argument(
        "--side-by-side",
        action="store_true",
        help="write the grey input left of the result (an image or a video twice as wide)",
    )
    sub.add_argument(
        "--resume",
        action="store_true",
        help="video: continue an interrupted job; folder: keep outputs already there (else overwritten)",
    )
    sub.add_argument(
        "--format",
        default=None,
        help="output image format for a folder or pages, e.g. png (a single file takes -o's suffix)",
    )


def run(args: argparse.Namespace) -> int:
    """``colorrt colorize``: file → file, folder → folder, video → video."""
    from colorrt.pages import is_page_job
    from colorrt.runtime import Runtime

    if not args.input.exists():
        raise InputError(f"no such file or folder: {args.input}", "check the path")
    _check_reference_strength(args)
    _check_folder_output(args.input, args.output)
    if args.ray:
        from colorrt.cli import colorize_ray

        _check_ray_flags(args)
        return colorize_ray.run(args)
    runtime = Runtime(
        args.model,
        backend=args.backend,
        device=args.device,
        batch_size=args.batch_size,
        contract=args.contract,
        threads=args.threads,
        render_size=args.render_size,
        strength=args.strength,
        reference=args.reference,
        gpu_path=args.gpu_path,
        **({"detector": args.detector} if args.detector is not None else {}),
    )
    with runtime:
        into_model = runtime.contract.takes_reference  # then --reference is no pages-only option
        if is_page_job(
            args.input,
            args.output,
            pages=args.pages,
            reference=None if into_model else args.reference,
            rtl=args.rtl,
            force=args.force,
        ):
            return _colorize_pages(runtime, args)
        if args.input.is_dir():
            return _colorize_folder(runtime, args)
        output = args.output / args.input.name if args.output.is_dir() else args.output
        _check_single_file_flags(args, output)
        if _is_video_job(args.input, output):
            return _colorize_video(runtime, args.input, output, args)
        runtime.colorize_file(args.input, output, side_by_side=args.side_by_side)
        if not args.quiet:
            print(f"wrote {output}")
    return EXIT_OK


def _check_single_file_flags(args: argparse.Namespace, output: Path) -> None:
    """One file in, one file out: its format is the output's suffix, so --format is refused."""
    if args.format:
        suffix = args.format.lower() if args.format.startswith(".") else f".{args.format.lower()}"
        raise InputError(
            f"--format sets the format of a folder's or a chapter's outputs; for one file, -o decides "
            f"(it names {output.name})",
            f"drop --format, or pass -o {output.with_suffix(suffix)}",
        )


def _check_reference_strength(args: argparse.Namespace) -> None:
    """--reference-strength needs --reference, and a value in 0..1: refused before the model loads."""
    if args.reference_strength is None:
        return
    if args.reference is None:
        raise InputError("--reference-strength needs --reference", "add --reference IMAGE_OR_PALETTE")
    check_reference_strength(args.reference_strength)


def _check_ray_flags(args: argparse.Namespace) -> None:
    """Refuse the flags the Ray adapter does not take yet, rather than ignore them."""
    given = {
        "--render-size": args.render_size is not None,
        "--strength": args.strength != 1.0,
        "--side-by-side": args.side_by_side,
        "--format": args.format is not None,
        "--resume": args.resume and args.input.is_dir(),
        "--gpu-path/--no-gpu-path": args.gpu_path is not None,
        "--detector": args.detector is not None,
    }
    unsupported = [flag for flag, used in given.items() if used]
    if unsupported:
        raise InputError(
            f"{', '.join(unsupported)} cannot be used with --ray yet", "drop them, or run without --ray"
        )


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
    report = runtime.colorize_folder(
        args.input,
        args.output,
        progress=not args.quiet,
        resume=args.resume,
        format=args.format,
        side_by_side=args.side_by_side,
    )
    if not args.quiet:
        print(report.summary(args.output))
    if report.skipped:
        print(f"colorrt: skipped {len(report.skipped)} file(s) that are not images:", file=sys.stderr)
        for path, why in report.skipped:
            print(f"  {path}: {why}", file=sys.stderr)
    if report.failed:
        print(f"colorrt: {len(report.failed)} file(s) failed:", file=sys.stderr)
        for path, message in report.failed:
            print(f"  {path}: {message}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _colorize_pages(runtime: Runtime, args: argparse.Namespace) -> int:
    for flag, used in (("--side-by-side", args.side_by_side), ("--resume", args.resume)):
        if used:
            raise InputError(f"{flag} is not available for comic pages", f"drop {flag}")
    report = runtime.colorize_pages(
        args.input,
        args.output,
        reference=args.reference,
        reference_strength=args.reference_strength,
        rtl=args.rtl,
        force=args.force,
        format=args.format,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(report.summary())
    for name, message in [*report.failed, *report.unchanged]:  # unchanged: not decodable, copied as is
        print(f"  {name}: {message}", file=sys.stderr)
    return EXIT_PARTIAL if report.failed or report.unchanged else EXIT_OK


def _colorize_video(runtime: Runtime, src: Path, dst: Path, args: argparse.Namespace) -> int:
    options = VideoOptions(
        codec=args.codec,
        crf=args.crf,
        bitrate=args.bitrate,
        pix_fmt=args.pix_fmt,
        preset=args.preset,
        temporal=args.temporal,
        resume=args.resume,
        decoder=args.decoder,
        progress=not args.quiet,
        side_by_side=args.side_by_side,
    )
    try:
        report = runtime.colorize_video(src, dst, options=options)
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
