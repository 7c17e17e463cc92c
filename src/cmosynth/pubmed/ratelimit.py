"""One NCBI rate limit shared by every process of a run.

Snakemake runs each job in its own process, so a limiter kept in memory would let N jobs
send N times the allowed rate. Instead the recent request times live in a small JSON
file guarded by a file lock (`filelock`) in a folder all processes of a run share.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

log = logging.getLogger("cmosynth.pubmed.ratelimit")

#: Requests per second NCBI allows without and with an API key.
RATE_WITHOUT_KEY = 3.0
RATE_WITH_KEY = 10.0

#: Requests count until answered, so a request delayed on its way still lands in its own
#: window at the server; the window is stretched a little further only to absorb timer
#: and scheduling granularity.
WINDOW_SLACK = 0.02


def default_rate_dir(host: str) -> Path:
    """`NCBI_RATE_DIR`, else a per-user temp folder keyed by the E-utilities host."""
    configured = os.environ.get("NCBI_RATE_DIR")
    if configured:
        return Path(configured)
    safe_host = re.sub(r"[^A-Za-z0-9._-]", "_", host) or "eutils"
    return Path(tempfile.gettempdir()) / f"cmosynth-ncbi-{_user()}" / safe_host


def _user() -> str:
    try:
        return re.sub(r"[^A-Za-z0-9._-]", "_", getpass.getuser())
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "user"


class SharedRateLimiter:
    """At most `rate` requests in any window of one second, across processes.

    `with limiter.slot(): send()` blocks until a request may go out. The request is
    counted from when it was claimed and, once answered, from when its answer arrived:
    a request delayed on its way (a busy machine, a slow connection) then still lands
    in a window of its own at the server. `pause(seconds)` makes every process wait
    (used when NCBI answers 429 with Retry-After).
    """

    def __init__(self, rate: float, directory: str | os.PathLike, name: str = "eutils"):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.state_path = self.directory / f"{name}.json"
        self._lock = FileLock(str(self.directory / f"{name}.lock"))
        # Fractional rates (e.g. 0.5/s) become one request per 1/rate seconds.
        self.slots = max(int(rate), 1)
        self.window = (self.slots / rate) * (1.0 + WINDOW_SLACK)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a request slot for the duration of one request."""
        claimed = self.acquire()
        try:
            yield
        finally:
            self._answered(claimed)

    def acquire(self) -> float:
        """Wait for a free slot, claim it and return the time it was claimed."""
        while True:
            with self._lock:
                state = self._read()
                now = time.time()
                wait = self._wait_needed(state, now)
                if wait <= 0:
                    state["sent"] = [*self._recent(state, now), now]
                    self._write(state)
                    return now
            time.sleep(wait)

    def _answered(self, claimed: float) -> None:
        """Move a request's time from when it was claimed to when it was answered."""
        with self._lock:
            state = self._read()
            sent = state.get("sent", [])
            if claimed in sent:
                sent[sent.index(claimed)] = time.time()
                state["sent"] = sorted(sent)
                self._write(state)

    def pause(self, seconds: float) -> None:
        """Hold back every process sharing this limiter for `seconds` from now."""
        with self._lock:
            state = self._read()
            state["not_before"] = max(state.get("not_before", 0.0), time.time() + seconds)
            self._write(state)

    def _wait_needed(self, state: dict, now: float) -> float:
        wait = state.get("not_before", 0.0) - now
        recent = self._recent(state, now)
        if len(recent) >= self.slots:
            # min(): a clock stepped backwards must not stall the run for long.
            wait = max(wait, min(recent[-self.slots] + self.window - now, self.window))
        return wait

    def _recent(self, state: dict, now: float) -> list[float]:
        return [t for t in state.get("sent", []) if now - t < self.window][-self.slots:]

    def _read(self) -> dict:
        with contextlib.suppress(FileNotFoundError, ValueError):
            data = json.loads(self.state_path.read_text("utf-8"))
            if isinstance(data, dict):
                return data
        return {}

    def _write(self, state: dict) -> None:
        # Written under the lock, so a plain replace is enough to never expose half a file.
        tmp = self.state_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state), "utf-8")
        os.replace(tmp, self.state_path)
