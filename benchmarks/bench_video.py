"""Video throughput on this machine, one run: model only vs colorrt end to end vs a DeOldify-style pipeline.

    python benchmarks/bench_video.py [--frames 48] [--model model.onnx] [--out results/video.json]

A 1280x720 grey clip with AAC audio is synthesized, then colorized with the same model three ways:

* model only: the engine on preprocessed batches (no decode, pre/postprocessing or encode);
* colorrt end to end: ``colorize_video`` (threaded decode → prepare → engine → merge → H.264 encode,
  overlapped in the streaming pipeline; audio stream-copied; segments assembled at the end);
* DeOldify-style: decode every frame to a JPEG file, colorize each file on its own, write JPEG
  files, re-encode them to H.264 (sequential stages, frames through the disk).

The model is ``--model`` or, by default, the bundled default model as shipped
(``colorrt/assets/colorrt-default.onnx``, v2: EfficientNet-Lite0 encoder + decoder, trained weights).
All three pipelines run that one ONNX file on ONNX Runtime CPU in one ``Runtime``: model only and
end to end in batches of ``--batch``; the DeOldify-style baseline through ``Runtime.colorize``, one
frame at a time (batch 1), pre- and postprocessing on the host. Frames/s are for the whole clip,
best of ``--repeats`` interleaved runs; CPU ms per frame counts the CPU time of every thread of this
process (what the work costs, whatever else the machine runs). The JSON records the CPU model and
SIMD flags (/proc/cpuinfo), the model file's SHA-256 and the load average before and after.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_default_model import cpu_flags  # noqa: E402
from common import print_table, write_results  # noqa: E402

SIZE = (720, 1280)  # pixels (height, width)
FPS = 24


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled colorrt-default)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument(
        "--repeats", type=int, default=2, help="interleaved runs of each; the fastest is kept"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from colorrt.engines.registry import default_model_path
    from colorrt.runtime.runtime import Runtime

    load_before = _load_average()
    model = Path(args.model) if args.model else default_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runtime = Runtime(model, batch_size=args.batch)
        clip = work / "clip.mp4"
        _write_clip(clip, args.frames)
        runs: dict[str, list[dict[str, float]]] = {"model": [], "colorrt": [], "deoldify": []}
        for attempt in range(args.repeats):  # interleaved, so a busy spell of the machine hits all three
            runs["model"].append(_model_only(runtime, clip))
            runs["colorrt"].append(_end_to_end(runtime, clip, work / f"colorrt{attempt}.mp4"))
            runs["deoldify"].append(_deoldify_style(runtime, clip, work / f"deoldify{attempt}"))
        model_only, end_to_end, deoldify = (min(r, key=lambda row: row["seconds"]) for r in runs.values())

    rows = [
        {"pipeline": "model only (engine on ready batches)", **model_only},
        {"pipeline": "colorrt end to end (colorize_video)", **end_to_end},
        {"pipeline": "DeOldify-style (JPEG files, frame by frame)", **deoldify},
    ]
    ratios = {
        "end_to_end_over_model_only": end_to_end["fps"] / model_only["fps"],
        "end_to_end_over_deoldify_style": end_to_end["fps"] / deoldify["fps"],
    }
    print(
        f"{args.frames} frames of {SIZE[1]}x{SIZE[0]}, model {model.name}, batch {args.batch}, "
        f"{os.cpu_count()} CPUs, load average {_load_average()}\n"
    )
    print_table(rows, ["pipeline", "seconds", "fps", "cpu_ms_per_frame"])
    print(
        f"\nend to end / model only: {ratios['end_to_end_over_model_only']:.2f} (goal >= 0.90)\n"
        f"end to end / DeOldify-style: {ratios['end_to_end_over_deoldify_style']:.2f}x (goal >= 2)"
    )
    path = write_results(
        "video",
        rows,
        args.out,
        frames=args.frames,
        size=list(SIZE),
        model=str(args.model or "colorrt-default (bundled, as shipped)"),
        model_sha256=hashlib.sha256(model.read_bytes()).hexdigest(),
        batch=args.batch,
        repeats=args.repeats,
        ratios=ratios,
        cpu=cpu_flags(),
        load_average_before=load_before,
        load_average=_load_average(),
    )
    print(f"\nwrote {path}")


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _write_clip(path: Path, frames: int) -> None:
    from tests.synth_video import scene_frames, write_video

    cuts = [frames // 2]
    write_video(path, scene_frames(frames, SIZE, cuts, seed=0, pan=4), fps=FPS, time_base=Fraction(1, 12288))


def _model_only(runtime, clip: Path) -> dict[str, float]:
    from colorrt.io.video import VideoReader
    from colorrt.kernels.pipeline import luminance, preprocess

    lum = [luminance(f.image) for f in VideoReader(clip)]
    batches = [
        preprocess(lum[i : i + runtime.batch_size], runtime.contract)
        for i in range(0, len(lum), runtime.batch_size)
    ]
    runtime.engine.infer(batches[0])  # warm-up
    clock = _Clock()
    for batch in batches:
        runtime.engine.infer(batch)
    return clock.rate(len(lum))


def _end_to_end(runtime, clip: Path, dst: Path) -> dict[str, float]:
    from colorrt.runtime.video_job import colorize_video

    clock = _Clock()
    report = colorize_video(runtime, clip, dst, progress=False)
    return clock.rate(report.frames)


def _deoldify_style(runtime, clip: Path, folder: Path) -> dict[str, float]:
    import av
    from PIL import Image

    raw, colour = folder / "raw", folder / "colour"
    raw.mkdir(parents=True)
    colour.mkdir()
    clock = _Clock()
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            frame.to_image().save(raw / f"{i:05d}.jpg", quality=95)
    files = sorted(raw.glob("*.jpg"))
    for file in files:
        image = np.asarray(Image.open(file).convert("RGB"))
        Image.fromarray(runtime.colorize(image)).save(colour / file.name, quality=95)
    with av.open(str(folder / "out.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        for file in sorted(colour.glob("*.jpg")):
            out.mux(stream.encode(av.VideoFrame.from_image(Image.open(file))))
        out.mux(stream.encode(None))
    return clock.rate(len(files))


class _Clock:
    """Wall time and CPU time (all threads of this process) since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rate(self, frames: int) -> dict[str, float]:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return {
            "frames": frames,
            "seconds": wall,
            "fps": frames / wall,
            "cpu_ms_per_frame": 1e3 * cpu / frames,
        }


if __name__ == "__main__":
    main()
