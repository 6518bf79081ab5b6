"""Step 5 of the GPU check (issue 18): a real 1080p film with audio, colorized end to end on the GPU.

    python benchmarks/gpu_film.py --out film.json [--work DIR] [--frames 600] [--baseline-frames 64]
                                  [--batch 8] [--arch colorrt-default] [--preset NAME] [--dry-run]

The film is made here: grey 1920x1080 at 24 frames/s (tests/synth_video.py: textured scenes with
grain, exposure flicker, a 4 px/frame pan and a cut halfway) with an AAC audio track, plus a clip of
its first ``--baseline-frames`` frames. One model (``--arch``, random weights: timings do not depend
on them) is measured in one run:

* ``e2e``: ``Runtime.colorize_video`` (what ``colorrt colorize`` runs for a film) with the torch CUDA
  engine (FP16, channels_last, CUDA graphs), batch ``--batch``, after a warm-up on the short clip;
  the output is checked (frame count, audio kept);
* ``deoldify_style``: benchmarks/bench_video.py's DeOldify-style pipeline (frames through JPEG
  files, one by one) with torch FP32 (TF32 convolutions, torch's default) at batch 1 and host
  pre/post-processing, on the short clip;
* ``decode_only`` (VideoReader), ``model_only`` (the e2e engine on ready device batches) and
  ``encode_only`` (SegmentWriter with the job's encoder settings, on the colorized frames), so that
  e2e / min(stage) says how well the pipeline overlaps its stages (goal >= 0.9);
* ``cli``: the ``colorrt colorize --backend torch --device cuda`` command on the short clip, when
  the CLI can name a torch checkpoint's architecture (``--arch``); skipped with the reason otherwise.

Each measure that fails is recorded with its error and the others still run; the JSON is rewritten
after each, so a run killed from outside keeps what was done. Exit status 1 when a measure failed.
``--dry-run``: a 128x72 clip of 12 frames on the CPU (torch FP32, no CUDA graphs).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS.parent))
FPS = 24
TIME_BASE = Fraction(1, 12288)
GOALS = {"speedup_vs_deoldify_style": 30.0, "e2e_over_slowest_stage": 0.9}
STAGES = ("decode_only", "model_only", "encode_only")


class FilmRun:
    """The clips, the engines and the measures of one run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.clip = self.work / "film.mp4"
        self.short = self.work / "film_short.mp4"
        self.e2e_out = self.work / "film_colour.mp4"
        self.cuda = args.device == "cuda"
        self._engines: dict[str, Any] = {}

    def engine(self, kind: str) -> Any:
        """The ``fast`` engine (colorrt's) or the ``baseline`` one (FP32), made once."""
        if kind not in self._engines:
            from colorrt.engines.torch import TorchEngine

            if kind == "fast":
                options = dict(dtype="fp16", channels_last=True, cuda_graphs=True) if self.cuda else {}
            else:
                options = dict(dtype="fp32", tf32=True)
            self._engines[kind] = TorchEngine(
                self.args.arch, random_init=True, device=self.args.device, **options
            )
        return self._engines[kind]

    def film(self) -> dict[str, Any]:
        from colorrt.io.video import probe
        from tests.synth_video import scene_frames, write_video

        start = time.perf_counter()
        count, size = self.args.frames, self.args.size
        frames = list(scene_frames(count, size, [count // 2], seed=0, pan=4))
        write_video(self.clip, frames, fps=FPS, time_base=TIME_BASE)
        write_video(self.short, frames[: self.args.baseline_frames], fps=FPS, time_base=TIME_BASE)
        info = probe(self.clip)
        return {
            "seconds": time.perf_counter() - start,
            "frames": count,
            "size": f"{info.width}x{info.height}",
            "codec": info.codec,
            "duration_s": info.duration_s,
            "streams_kept": list(info.passthrough),
            "mib": round(self.clip.stat().st_size / 2**20, 2),
        }

    def e2e(self) -> dict[str, Any]:
        from colorrt import Runtime
        from colorrt.io.video import probe

        engine = self.engine("fast")
        runtime = Runtime(engine, batch_size=self.args.batch)
        options = dict(preset=self.args.preset, progress=False)
        runtime.colorize_video(self.short, self.work / "warmup.mp4", **options)  # cuDNN, graph capture
        start = time.perf_counter()
        report = runtime.colorize_video(self.clip, self.e2e_out, **options)
        seconds = time.perf_counter() - start
        out = probe(self.e2e_out)
        if out.frames != self.args.frames or not any(s.startswith("audio") for s in out.passthrough):
            raise RuntimeError(f"output has {out.frames} frames and streams {out.passthrough}")
        return {
            "engine": f"torch {engine.precision} on {engine.device}"
            + (" channels_last cuda_graphs" if self.cuda else ""),
            "batch": self.args.batch,
            "gpu_path": runtime.device_ops is not None,  # pre/post-processing on the device
            "frames": report.frames,
            "seconds": seconds,
            "fps": report.frames / seconds,
            "job_fps": report.fps,
            "scene_cuts": report.scene_cuts,
            "output_streams": list(out.passthrough),
            "warnings": report.warnings,
        }

    def deoldify_style(self) -> dict[str, Any]:
        import bench_video

        from colorrt import Runtime
        from colorrt.io.video import VideoReader

        runtime = Runtime(self.engine("baseline"), batch_size=1, gpu_path=False)  # host pre/post
        runtime.colorize(next(iter(VideoReader(self.short))).image)  # warm-up (cuDNN, allocator)
        rate = bench_video._deoldify_style(runtime, self.short, self.work / "deoldify")
        engine = runtime.engine
        return {**rate, "engine": f"torch {engine.precision} on {engine.device}, batch 1, host pre/post"}

    def decode_only(self) -> dict[str, Any]:
        from colorrt.io.video import VideoReader

        start, frames = time.perf_counter(), 0
        for _ in VideoReader(self.clip):
            frames += 1
        return _rate(frames, time.perf_counter() - start)

    def model_only(self) -> dict[str, Any]:
        from colorrt.io.video import VideoReader
        from colorrt.kernels.pipeline import luminance, preprocess

        engine, size = self.engine("fast"), self.args.batch
        reader = iter(VideoReader(self.clip))
        planes = [luminance(next(reader).image) for _ in range(size)]
        batch = preprocess(planes, engine.contract, dtype=engine.input_dtype)
        if self.cuda:
            import cupy as cp
            from bench_gpu import cuda_time_ms

            device_batch = cp.asarray(batch)
            ms = cuda_time_ms(lambda: engine.infer(device_batch), repeats=20)
        else:
            from common import time_call

            ms = time_call(lambda: engine.infer(batch), repeats=3, warmup=1)["median_ms"]
        return {
            "render": "x".join(map(str, batch.shape[2:])),
            "batch": size,
            "ms_per_batch": ms,
            "fps": size / (ms / 1e3),
        }

    def encode_only(self) -> dict[str, Any]:
        from colorrt.io.video import SegmentWriter, VideoReader, encode_settings, probe

        info = probe(self.clip)
        source = self.e2e_out if self.e2e_out.is_file() else self.clip
        images = [_rgb(f.image) for f in VideoReader(source)]
        pts = [f.pts for f in VideoReader(self.clip)]
        dst = self.work / "encode_only.mp4"
        settings = encode_settings(dst, preset=self.args.preset, size=(info.height, info.width))
        start = time.perf_counter()
        writer = SegmentWriter(dst, settings, info, pts[0])
        for image, stamp in zip(images, pts, strict=True):
            writer.write(image, stamp)
        writer.close()
        rate = _rate(len(images), time.perf_counter() - start)
        what = "the colorized output" if source == self.e2e_out else "the grey input, tinted"
        return {**rate, "encoder": settings.encoder, "options": settings.options, "frames_from": what}

    def cli(self) -> dict[str, Any]:
        import torch

        from colorrt.models.registry import build_model

        colorize = [sys.executable, "-m", "colorrt", "colorize"]
        usage = subprocess.run([*colorize, "--help"], capture_output=True, text=True, check=True).stdout
        if "--arch" not in usage:
            return {"skipped": "colorrt colorize has no --arch to name a torch checkpoint's architecture"}
        checkpoint = self.work / f"{self.args.arch}.pth"
        torch.save(build_model(self.args.arch, random_init=True).state_dict(), checkpoint)
        command = [*colorize, str(self.short), "-o", str(self.work / "cli.mp4"), "--backend", "torch"]
        command += ["--device", self.args.device, "--model", str(checkpoint), "--arch", self.args.arch]
        command += ["--batch-size", str(self.args.batch)]
        command += ["--preset", self.args.preset] if self.args.preset else []
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}")
        said = re.search(r"([\d.]+) frames/s", proc.stdout)
        return {
            "command": " ".join(command),
            "seconds_with_start": seconds,
            "reported_fps": float(said[1]) if said else None,
        }


def _rate(frames: int, seconds: float) -> dict[str, Any]:
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds if seconds > 0 else None}


def _rgb(image: np.ndarray) -> np.ndarray:
    """A colour frame: grey frames (neutral chroma decodes as grey) get a sepia-like tint."""
    if image.ndim == 3:
        return image
    tint = np.array([1.0, 0.9, 0.75], dtype=np.float32)
    return (image[..., None].astype(np.float32) * tint).astype(np.uint8)


def ratios(measures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Speed-up over the DeOldify-style pipeline and e2e / slowest stage (None where a figure is missing)."""
    fps = {name: m.get("fps") for name, m in measures.items()}
    e2e, base = fps.get("e2e"), fps.get("deoldify_style")
    stages = {name: fps.get(name) for name in STAGES}
    slowest = min((v, k) for k, v in stages.items() if v) if all(stages.values()) else None
    return {
        "speedup_vs_deoldify_style": e2e / base if e2e and base else None,
        "slowest_stage": slowest[1] if slowest else None,
        "e2e_over_slowest_stage": e2e / slowest[0] if e2e and slowest else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measure in order, the JSON rewritten after each."""
    film = FilmRun(args)
    result: dict[str, Any] = {
        "dry_run": args.dry_run,
        "device": args.device,
        "arch": args.arch,
        "frames": args.frames,
        "size": f"{args.size[1]}x{args.size[0]}",
        "baseline_frames": args.baseline_frames,
        "batch": args.batch,
        "preset": args.preset or "encoder default (medium)",
        "goals": GOALS,
        "measures": {},
        "errors": {},
    }
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("film", film.film),
        ("e2e", film.e2e),
        ("deoldify_style", film.deoldify_style),
        ("decode_only", film.decode_only),
        ("model_only", film.model_only),
        ("encode_only", film.encode_only),
        ("cli", film.cli),
    ]
    for name, measure in steps:
        print(f"film: {name} ...", flush=True)
        try:
            result["measures"][name] = measure()
        except Exception as e:  # recorded; the next measure still runs
            traceback.print_exc()
            result["errors"][name] = f"{type(e).__name__}: {e}"
        result["ratios"] = ratios(result["measures"])
        Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def print_summary(result: dict[str, Any]) -> None:
    from common import print_table

    rows = [
        {"measure": name, "fps": m.get("fps"), "seconds": m.get("seconds"), "frames": m.get("frames")}
        for name, m in result["measures"].items()
    ]
    print(f"\n{result['frames']} frames of {result['size']} on {result['device']}, {result['arch']}\n")
    print_table(rows, ["measure", "fps", "seconds", "frames"])
    for key, value in result["ratios"].items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
    for name, error in result["errors"].items():
        print(f"error in {name}: {error}")


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return height, width


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="JSON file")
    parser.add_argument("--work", default=None, help="folder for the clips (default: a new temporary one)")
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--size", type=_size, default=(1080, 1920), help="WIDTHxHEIGHT (default 1920x1080)")
    parser.add_argument("--baseline-frames", type=int, default=64, help="frames of the short clip")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--arch", default="colorrt-default")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--preset", default=None, help="x264 preset for e2e and encode-only (default medium)")
    parser.add_argument("--dry-run", action="store_true", help="tiny clip on the CPU")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.frames, args.size, args.baseline_frames, args.batch, args.device = 12, (72, 128), 6, 4, "cpu"
    if args.work is None:
        import tempfile

        args.work = tempfile.mkdtemp(prefix="colorrt_film_")
    result = run(args)
    print_summary(result)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
