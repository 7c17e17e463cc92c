"""Progress and logging for long steps: counts, rate and ETA on the terminal, plain
periodic lines when output goes to a log file (Snakemake jobs, cron)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("cmosynth")


def setup_logging(log_file: str | Path | None = None, verbose: bool = False) -> None:
    """Log to stderr and, if given, to `log_file` (appending, so reruns keep history)."""
    root = logging.getLogger("cmosynth")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.propagate = False


class Progress:
    """Counts done units of a step and reports count, rate and ETA.

    On a terminal it draws a rich progress bar; otherwise it logs a line at most every
    `every` seconds, so Snakemake log files show progress without flooding.
    """

    def __init__(self, description: str, total: int | None = None, unit: str = "records",
                 every: float = 5.0):
        self.description = description
        self.total = total
        self.unit = unit
        self.every = every
        self.done = 0
        self._start = time.monotonic()
        self._last = self._start
        self._bar = None
        if sys.stderr.isatty():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     TimeRemainingColumn(), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            log.info("%s", self._line(now))

    def _line(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        text = f"{self.description}: {self.done:,}"
        if self.total:
            text += f"/{self.total:,}"
        text += f" {self.unit} ({rate:,.1f}/s"
        if self.total and rate > 0:
            text += f", ETA {max(self.total - self.done, 0) / rate:,.0f} s"
        return text + ")"

    def close(self, completed: bool = True) -> None:
        """Stop the bar; log the final count only when the step completed, so a failing
        step ends with its one-line error rather than a misleading "done"."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if completed:
            log.info("%s done", self._line(time.monotonic()))

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close(completed=exc_type is None)


def track(items: Iterable[T], description: str, total: int | None = None,
          unit: str = "records") -> Iterator[T]:
    """Yield from `items`, reporting progress as they pass."""
    with Progress(description, total=total, unit=unit) as progress:
        for item in items:
            yield item
            progress.advance()
