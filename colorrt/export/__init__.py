"""torch -> ONNX export with the colour contract in the file (the ``colorrt export`` CLI: colorrt.cli.export).

Importing this package does not import torch.
"""

from __future__ import annotations

from colorrt.export.onnx_export import ExportResult, export

__all__ = ["ExportResult", "export"]
