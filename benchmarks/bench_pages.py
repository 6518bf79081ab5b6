"""Page throughput: panels batched across pages vs page at a time vs panel at a time, same model, one run.

    python benchmarks/bench_pages.py [--pages 12] [--size 1100x780] [--model default|synthetic|PATH]
                                     [--batch-size 8] [--reference] [--out results/pages.json]

Generated manga pages (tests/synth_pages.py, about 6 panels each) go through the whole page
pipeline in memory (panel detection, letterboxing, inference, palette transfer with ``--reference``,
chroma merge at full resolution); file decoding and encoding are left out. Modes:

  * panel at a time: every panel its own inference call (batch 1);
  * page at a time: the panels of one page in one call (up to --batch-size);
  * across pages: calls always filled with --batch-size panels, taken from consecutive pages.

``--model default`` exports colorrt's bundled U-Net architecture with random weights (same compute as
the trained model; needs torch); ``synthetic`` is a small random CNN (no torch); or pass an .onnx path.
Each mode gets one warm-up page first. Reports pages/s, panels/s and the share of time in inference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.synth_pages
from common import print_table, write_results  # noqa: E402

from colorrt.engines.base import Engine  # noqa: E402


class TimedEngine(Engine):
    """Wraps an engine, adding up the time spent in inference and recording each batch size."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.contract = inner.contract
        self.device = inner.device
        self.name = inner.name
        self.seconds = 0.0
        self.batches: list[int] = []

    def _infer_impl(self, batch: Any) -> Any:
        start = time.perf_counter()
        out = self.inner._infer_impl(batch)
        self.seconds += time.perf_counter() - start
        self.batches.append(int(batch.shape[0]))
        return out

    def reset(self) -> None:
        self.seconds, self.batches = 0.0, []


def _model(choice: str, folder: Path) -> tuple[Path, str]:
    if choice == "default":
        from colorrt.export import export

        path = folder / "colorrt-default.onnx"
        export("colorrt-default", output=path, random_init=True, seed=0, check=False)
        return path, "colorrt-default U-Net (random weights), ONNX Runtime CPU FP32"
    if choice == "synthetic":
        from tests.synth_pages import colorizer_model

        return colorizer_model(
            folder / "synthetic.onnx", 256, 32
        ), "synthetic 32-channel CNN, ONNX Runtime CPU FP32"
    return Path(choice), f"{choice}, ONNX Runtime CPU"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--size", default="1100x780", help="page height x width in pixels")
    parser.add_argument("--model", default="default", help="default | synthetic | path to an .onnx")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--reference", action="store_true", help="match the character reference palette too")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from colorrt.engines.onnxruntime import OnnxRuntimeEngine
    from colorrt.pages.colorize import PageColorizer, PageOptions
    from colorrt.pages.palette import Palette
    from tests import synth_pages as synthetic

    height, width = (int(v) for v in args.size.lower().split("x"))
    pages = [p.image for p in synthetic.make_chapter(args.pages + 1, seed=0, size=(height, width))]
    warmup, pages = pages[0], pages[1:]
    palette = Palette.from_image(synthetic.character_reference(256)) if args.reference else None
    modes = (
        ("panel at a time", 1, False),
        ("page at a time", args.batch_size, False),
        ("across pages", args.batch_size, True),
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_path, model_text = _model(args.model, Path(tmp))
        engine = TimedEngine(OnnxRuntimeEngine(model_path))
        for mode, batch_size, across in modes:
            options = PageOptions(palette=palette, across_pages=across)
            colorizer = PageColorizer(engine, batch_size, options)
            colorizer.colorize(warmup)
            engine.reset()
            start = time.perf_counter()
            results = [result for _, result in colorizer.stream(enumerate(pages))]
            seconds = time.perf_counter() - start
            panels = sum(len(r.panels) for r in results)
            rows.append(
                {
                    "mode": mode,
                    "batch_size": batch_size,
                    "pages": len(pages),
                    "panels": panels,
                    "inference_calls": len(engine.batches),
                    "mean_batch": panels / max(1, len(engine.batches)),
                    "seconds": seconds,
                    "pages_per_s": len(pages) / seconds,
                    "panels_per_s": panels / seconds,
                    "inference_share": engine.seconds / seconds,
                }
            )
            print(f"{mode}: {rows[-1]['pages_per_s']:.2f} pages/s", flush=True)
        engine.inner.close()
    base = {row["mode"]: row["pages_per_s"] for row in rows}
    for row in rows:
        row["speedup_vs_page_at_a_time"] = row["pages_per_s"] / base["page at a time"]
    columns = ["mode", "batch_size", "panels", "inference_calls", "mean_batch", "pages_per_s", "panels_per_s"]
    print_table(rows, [*columns, "inference_share", "speedup_vs_page_at_a_time"])
    path = write_results(
        "pages",
        rows,
        args.out,
        model=model_text,
        page_size=[height, width],
        render_size=engine.contract.render_size,
        reference=args.reference,
    )
    print("wrote", path)


if __name__ == "__main__":
    main()
