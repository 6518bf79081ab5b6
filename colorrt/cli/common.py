"""What every ``colorrt`` subcommand shares: exit codes."""

from __future__ import annotations

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
