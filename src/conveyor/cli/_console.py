"""Consoles for output (stdout) and diagnostics (stderr)."""

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

#: How each run/step status is coloured wherever it is shown.
STATUS_STYLE = {
    "succeeded": "green",
    "cached": "cyan",
    "reused": "cyan",
    "failed": "bold red",
    "interrupted": "yellow",
    "skipped": "dim",
    "running": "blue",
    "pending": "dim",
}
