"""Runtime: colorize images (and, later, video streams and pages) with any engine."""

from colorrt.runtime.runtime import BatchReport, Runtime

__all__ = ["BatchReport", "Runtime"]
