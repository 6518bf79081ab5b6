"""CUDA graphs for the torch engine: one graph per input shape, captured after warm-up runs on a
side stream and replayed from static buffers (least recently used shapes dropped)."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch  # imported only with the torch engine
from torch import nn

WARMUP_RUNS = 3  # eager runs on a side stream before a CUDA graph is captured (cuDNN picks algorithms)


def float_nchw(out: Any) -> Any:
    """A model output as contiguous float32."""
    return out.float().contiguous()


@dataclass
class _Captured:
    graph: Any
    static_input: Any
    static_output: Any


class GraphCache:
    """One CUDA graph per input shape, captured after warm-up runs, replayed from static buffers."""

    def __init__(self, module: nn.Module, max_graphs: int) -> None:
        self.module = module
        self.max_graphs = max_graphs
        self.graphs: OrderedDict[tuple[Any, ...], _Captured] = OrderedDict()
        self.uncapturable: set[tuple[Any, ...]] = set()

    def run(self, x: Any) -> Any:
        """The model's float32 output for ``x``: replayed from its shape's graph (captured on first
        sight), or run eagerly when that shape could not be captured."""
        key = (tuple(x.shape), x.dtype, x.device)
        captured = self.graphs.get(key)
        if captured is None and key not in self.uncapturable:
            captured = self._capture(x, key)
        if captured is None:
            return float_nchw(self.module(x))
        self.graphs.move_to_end(key)
        captured.static_input.copy_(x)
        captured.graph.replay()
        # The static output is overwritten by the next replay: hand out a copy (one, not two).
        out = float_nchw(captured.static_output)
        return out.clone() if out is captured.static_output else out

    def _capture(self, x: Any, key: tuple[Any, ...]) -> _Captured | None:
        if len(self.graphs) >= self.max_graphs:
            self.graphs.popitem(last=False)
        static_input = x.clone(memory_format=torch.preserve_format)
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                self.module(static_input)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                static_output = self.module(static_input)
        except RuntimeError as e:
            warnings.warn(
                f"CUDA graph capture failed for input {tuple(x.shape)} ({e}); running it eagerly",
                stacklevel=5,
            )
            self.uncapturable.add(key)
            return None
        captured = _Captured(graph, static_input, static_output)
        self.graphs[key] = captured
        return captured
