"""colorrt on the GPU vs a DeOldify-style baseline, and the GPU kernels' memory throughput (issue 7).

    python benchmarks/bench_gpu.py [--frames 64] [--baseline-frames 12] [--batch 8]
                                   [--models cyclegan-resnet9,eccv16] [--out results/gpu.json]

Needs an NVIDIA GPU, CuPy and a CUDA build of torch; without them it prints why and exits with
status 2. In one run, on synthetic 1920x1080 frames (timings do not depend on the weights, so the
models are randomly initialized):

1. Kernels, at 1080p and 4K, batch 8: the fused CuPy preprocess (uint8 frame -> L -> render-size
   model input) and postprocess (ab -> full-res merge -> uint8), as achieved GB/s of the bytes they
   must move (frames, full-res L, output frames) against the GPU's peak memory bandwidth, and
   against the same pipeline written with torch tensor ops (F.interpolate with antialias, Lab maths
   as elementwise ops).
2. End to end, per model at its render size:
   * baseline (DeOldify-style): torch FP32 eager, batch 1, each frame's pre/post-processing on the
     host with NumPy (colorrt's reference kernels), the model input and output copied per frame;
   * colorrt: the best GPU engine here (torch FP16, channels_last, CUDA graphs; TensorRT is not
     used by this script), batch >= 8, CuPy kernels, pinned double-buffered copies on separate
     streams (GpuBatchLoop);
   * the model alone on the same batches (device input, no copies), so the share of pre/post/copies
     in end-to-end time is reported (goal < 15 %), and the speed-up over the baseline (goal >= 10x).
Results: JSON (with the GPU name) and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

SIZES = {"1080p": (1080, 1920), "4K": (2160, 3840)}  # pixels, height x width
KERNEL_BATCH = 8
_ATTR_MEMORY_CLOCK_KHZ = 36  # cudaDevAttrMemoryClockRate
_ATTR_BUS_WIDTH_BITS = 37  # cudaDevAttrGlobalMemoryBusWidth
KNOWN_PEAK_GBS = {"H100 80GB HBM3": 3350.0, "H100 PCIe": 2000.0, "H200": 4800.0}  # vendor specs, GB/s


def gpu_problem() -> str | None:
    """Why this machine cannot run the benchmark, or None."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'colorrt[gpu]')"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CUDA reports no device"
    except cupy.cuda.runtime.CUDARuntimeError as e:
        return f"no usable CUDA device ({e})"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device (a CPU build?)"
    return None


def gpu_facts() -> dict[str, Any]:
    """Name, compute capability, memory, and peak memory bandwidth of device 0."""
    import cupy as cp

    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    facts: dict[str, Any] = {
        "gpu": name,
        "compute_capability": f"{props['major']}.{props['minor']}",
        "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
        "sm_count": props["multiProcessorCount"],
        "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(),
        "cupy": cp.__version__,
    }
    try:
        clock_khz = cp.cuda.runtime.deviceGetAttribute(_ATTR_MEMORY_CLOCK_KHZ, 0)
        bus_bits = cp.cuda.runtime.deviceGetAttribute(_ATTR_BUS_WIDTH_BITS, 0)
        facts["peak_bandwidth_gbs"] = round(2 * clock_khz * 1e3 * bus_bits / 8 / 1e9, 1)  # DDR: 2 per clock
        facts["peak_bandwidth_source"] = "memory clock x bus width (CUDA device attributes)"
    except Exception:  # attribute missing on this CUDA: fall back to the vendor's number
        peak = next((v for k, v in KNOWN_PEAK_GBS.items() if k in name), None)
        facts["peak_bandwidth_gbs"] = peak
        facts["peak_bandwidth_source"] = "vendor specification" if peak else "unknown"
    return facts


def synthetic_frames(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Distinct textured uint8 RGB frames (gradients, shapes and grain), like decoded film frames."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        base = 128 + 90 * np.sin(x / (37 + i) + i) * np.cos(y / (53 + 2 * i))
        rgb = np.stack([base, base * 0.9 + 10, base * 0.8 + 20], axis=-1)
        rgb += rng.normal(0, 6, size=(height, width, 1)).astype(np.float32)
        frames.append(np.clip(rgb, 0, 255).astype(np.uint8))
    return frames


def cuda_time_ms(fn: Any, repeats: int = 20, warmup: int = 3) -> float:
    """Mean milliseconds per call of ``fn`` (CuPy current stream, CUDA events)."""
    import cupy as cp

    for _ in range(warmup):
        fn()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    end.synchronize()
    return cp.cuda.get_elapsed_time(start, end) / repeats


# ---------------------------------------------------------------- 1. kernels


class TorchOpsPipeline:
    """The same pre/post-processing written with torch tensor ops (the comparison of issue 7 item 1)."""

    def __init__(self, contract: Any) -> None:
        import torch

        from colorrt.kernels import color

        self.torch = torch
        self.contract = contract
        self.y_weights = torch.tensor(color._Y_FROM_RGB, dtype=torch.float32, device="cuda")
        self.rgb_from_t = torch.tensor(color._RGB_FROM_T, dtype=torch.float32, device="cuda")

    def preprocess(self, frames: Any) -> tuple[Any, Any]:
        torch = self.torch
        x = frames.float() / 255.0
        lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(0) ** 2.4)
        y = lin @ self.y_weights
        f = torch.where(y > 0.008856, y.clamp_min(0.008856) ** (1 / 3), y * 7.787 + 16 / 116)
        lightness = f * 116 - 16
        size = self.contract.render_shape(*lightness.shape[1:])
        small = torch.nn.functional.interpolate(
            lightness[:, None], size=size, mode="bilinear", antialias=True, align_corners=False
        )
        return small * self.contract.input_scale + self.contract.input_offset, lightness

    def postprocess(self, ab: Any, lightness: Any) -> Any:
        torch = self.torch
        ab = torch.nn.functional.interpolate(
            ab, size=lightness.shape[1:], mode="bilinear", align_corners=False
        )
        ab = ab * self.contract.output_scale
        fy = (lightness + 16) / 116
        f = torch.stack([ab[:, 0] / 500 + fy, fy, (fy - ab[:, 1] / 200).clamp_min(0)], dim=-1)
        t = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / 7.787)
        lin = (t @ self.rgb_from_t.T).clamp(0, 1)
        srgb = torch.where(
            lin <= 0.0031308, lin * 12.92, 1.055 * lin.clamp_min(0.0031308) ** (1 / 2.4) - 0.055
        )
        return (srgb * 255).round().to(torch.uint8)


def bench_kernels(peak_gbs: float | None) -> list[dict[str, Any]]:
    """GB/s of the fused CuPy kernels and of the torch-ops pipeline at 1080p and 4K."""
    from colorrt.contract import PRESETS
    from colorrt.kernels import cuda as kernels

    contract = PRESETS["colorrt-default"]  # L -> ab, render 256 on the long side (multiple of 16)
    kernels.launcher_for().compile()
    torch_ops = TorchOpsPipeline(contract)
    rows = []
    for label, (height, width) in SIZES.items():
        rows += _kernel_rows(label, height, width, contract, torch_ops, peak_gbs)
    return rows


def _kernel_rows(
    label: str, height: int, width: int, contract: Any, torch_ops: TorchOpsPipeline, peak_gbs: float | None
) -> list[dict[str, Any]]:
    import cupy as cp
    import torch

    from colorrt.kernels import cuda as kernels

    frames = cp.asarray(np.stack(synthetic_frames(KERNEL_BATCH, height, width)))
    batch, lightness = kernels.preprocess_frames(frames, contract)
    rng = np.random.default_rng(0)
    ab = cp.asarray(rng.uniform(-0.3, 0.3, size=(KERNEL_BATCH, 2, *batch.shape[2:])).astype(np.float32))
    out = cp.empty((KERNEL_BATCH, height, width, 3), cp.uint8)
    pixels = KERNEL_BATCH * height * width
    # Bytes each stage must move at least: uint8 RGB in, float32 L out (kept for the merge) and the
    # L read back by the resize; the merge reads L and writes uint8 RGB. Render-size data is under
    # 2 % of it and not counted.
    moved = {"preprocess": pixels * (3 + 4 + 4), "postprocess": pixels * (4 + 3)}
    cupy_ms = {
        "preprocess": cuda_time_ms(
            lambda: kernels.preprocess_frames(frames, contract, luminance_out=lightness)
        ),
        "postprocess": cuda_time_ms(lambda: kernels.postprocess_batch(ab, lightness, contract, out=out)),
    }
    frames_t, ab_t, lightness_t = (
        torch.from_dlpack(frames),
        torch.from_dlpack(ab),
        torch.from_dlpack(lightness),
    )
    torch_ms = {
        "preprocess": _torch_time_ms(lambda: torch_ops.preprocess(frames_t)),
        "postprocess": _torch_time_ms(lambda: torch_ops.postprocess(ab_t, lightness_t)),
    }
    rows = []
    for stage, nbytes in moved.items():
        for implementation, ms in (("colorrt CuPy kernels", cupy_ms[stage]), ("torch ops", torch_ms[stage])):
            gbs = nbytes / (ms / 1e3) / 1e9
            rows.append(
                {
                    "section": "kernels",
                    "size": label,
                    "stage": stage,
                    "implementation": implementation,
                    "batch": KERNEL_BATCH,
                    "ms_per_batch": ms,
                    "ms_per_frame": ms / KERNEL_BATCH,
                    "gb_per_s": gbs,
                    "pct_of_peak": 100 * gbs / peak_gbs if peak_gbs else None,
                    "speedup_vs_torch_ops": torch_ms[stage] / ms,
                }
            )
    return rows


def _torch_time_ms(fn: Any, repeats: int = 20, warmup: int = 3) -> float:
    import torch

    for _ in range(warmup):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / repeats


# ---------------------------------------------------------------- 2. end to end


def baseline_fps(arch: str, frames: list[np.ndarray]) -> float:
    """DeOldify-style: torch FP32 eager, batch 1, NumPy pre/post per frame on the host."""
    import torch

    from colorrt.engines.torch import TorchEngine
    from colorrt.kernels import pipeline

    # TF32 on, as torch runs FP32 convolutions by default (cudnn.allow_tf32): the baseline as users get it.
    engine = TorchEngine(arch, random_init=True, device="cuda", dtype="fp32", tf32=True)
    contract = engine.contract

    def one(frame: np.ndarray) -> np.ndarray:
        lightness = pipeline.luminance(frame)
        batch = pipeline.preprocess([lightness], contract)
        output = engine.infer(batch)  # host -> device -> host for each frame
        return pipeline.postprocess(output, [lightness], contract)[0]

    one(frames[0])  # warm-up (cuDNN, allocator)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for frame in frames:
        one(frame)
    return len(frames) / (time.perf_counter() - start)


def colorrt_fps(arch: str, frames: list[np.ndarray], batch_size: int) -> dict[str, Any]:
    """End-to-end frames/s of GpuBatchLoop with the torch engine (FP16, channels_last, CUDA graphs),
    and frames/s of the engine alone on device batches."""
    import cupy as cp

    from colorrt.engines.torch import TorchEngine
    from colorrt.kernels import cuda as kernels
    from colorrt.runtime.gpu_loop import GpuBatchLoop

    engine = TorchEngine(
        arch, random_init=True, device="cuda", dtype="fp16", channels_last=True, cuda_graphs=True
    )
    with GpuBatchLoop(engine, batch_size=batch_size, depth=2) as loop:
        for _ in loop.run(frames[: 2 * batch_size]):  # warm-up: compile, cuDNN, graph capture
            pass
        loop.stats.frames, loop.stats.seconds, loop.stats.batches = 0, 0.0, 0
        for _ in loop.run(frames):
            pass
        e2e_fps = loop.stats.fps
    height, width = frames[0].shape[:2]
    device_batch = cp.asarray(np.stack(frames[:batch_size]))
    model_input, _ = kernels.preprocess_frames(device_batch, engine.contract, engine.input_dtype)
    model_ms = cuda_time_ms(lambda: engine.infer(model_input), repeats=10)
    model_fps = batch_size / (model_ms / 1e3)
    return {
        "engine": f"torch {engine.precision} channels_last cuda_graphs",
        "render": "x".join(map(str, engine.contract.render_shape(height, width))),
        "fps": e2e_fps,
        "model_only_fps": model_fps,
        "pre_post_copy_share_pct": 100 * max(0.0, 1 - e2e_fps / model_fps),
    }


def bench_end_to_end(
    models: list[str], frames: list[np.ndarray], baseline_count: int, batch: int
) -> list[dict]:
    rows = []
    for arch in models:
        base = baseline_fps(arch, frames[:baseline_count])
        fast = colorrt_fps(arch, frames, batch)
        rows.append(
            {
                "section": "end-to-end 1920x1080",
                "model": arch,
                "render": fast["render"],
                "baseline_fps": base,
                "colorrt_engine": fast["engine"],
                "batch": batch,
                "colorrt_fps": fast["fps"],
                "speedup": fast["fps"] / base,
                "model_only_fps": fast["model_only_fps"],
                "model_only_over_e2e": fast["model_only_fps"] / fast["fps"],
                "pre_post_copy_share_pct": fast["pre_post_copy_share_pct"],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=64, help="1080p frames through colorrt")
    parser.add_argument("--baseline-frames", type=int, default=12, help="frames through the baseline")
    parser.add_argument("--batch", type=int, default=8, help="colorrt batch size (>= 8 for the issue's goal)")
    parser.add_argument("--models", default="cyclegan-resnet9,eccv16", help="comma-separated architectures")
    parser.add_argument("--skip-kernels", action="store_true", help="only the end-to-end comparison")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/gpu.json)")
    args = parser.parse_args(argv)
    problem = gpu_problem()
    if problem is not None:
        print(
            f"bench_gpu: needs an NVIDIA GPU with CuPy and a CUDA build of torch: {problem}", file=sys.stderr
        )
        return 2
    facts = gpu_facts()
    print(f"GPU: {facts['gpu']} (sm {facts['compute_capability']}, peak {facts['peak_bandwidth_gbs']} GB/s)")
    rows: list[dict[str, Any]] = []
    if not args.skip_kernels:
        kernel_rows = bench_kernels(facts["peak_bandwidth_gbs"])
        print_table(
            kernel_rows, ["size", "stage", "implementation", "ms_per_frame", "gb_per_s", "pct_of_peak"]
        )
        rows += kernel_rows
    frames = synthetic_frames(min(args.frames, 16), *SIZES["1080p"])
    frames = [frames[i % len(frames)] for i in range(args.frames)]
    e2e = bench_end_to_end(
        [m.strip() for m in args.models.split(",") if m.strip()], frames, args.baseline_frames, args.batch
    )
    print()
    print_table(
        e2e,
        [
            "model",
            "render",
            "baseline_fps",
            "colorrt_fps",
            "speedup",
            "model_only_fps",
            "pre_post_copy_share_pct",
        ],
    )
    rows += e2e
    path = write_results("gpu", rows, args.out, gpu=facts)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
