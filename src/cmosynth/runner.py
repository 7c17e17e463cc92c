"""`cmosynth run TOPIC.yaml`: one topic's whole workflow through Snakemake's API, with each
stage's progress on the terminal, a failing step's own one-line error, and a summary.

The rules keep writing their logs under `<outputs>/<topic>/logs/`; while Snakemake runs,
the runner follows those logs and prints their lines with the stage's name, so counts,
rates and time left reach the terminal. Snakemake's own job blocks are kept quiet.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

import cmosynth
from cmosynth.config import parse_date
from cmosynth.errors import CmosynthError, ConfigError
from cmosynth.topics import checked_topic

#: What a stage's log line starts with, from the console's formatter; dropped on screen.
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?:INFO|WARNING|ERROR|DEBUG) "
                         r"[\w.]+: ")


class WorkflowFailed(CmosynthError):
    """A step of the workflow failed; the message is that step's own last error line."""


def find_snakefile() -> Path:
    """The workflow: the current folder's Snakefile, else the source checkout's."""
    for folder in (Path.cwd(), Path(cmosynth.__file__).resolve().parents[2]):
        if (folder / "Snakefile").exists() and (folder / "workflow" / "rules").is_dir():
            return folder / "Snakefile"
    raise ConfigError("Snakefile", None, "the workflow was not found: run from the cmosynth "
                      "repository folder (a source checkout installed with pip install -e .)")


@dataclass
class LogFollower:
    """Prints new lines of every log in a folder, prefixed by the log's name."""

    folder: Path
    out: object = field(default_factory=lambda: sys.stderr)
    _offsets: dict = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        # Logs of earlier runs are history: only what this run appends is shown.
        for path in self.folder.glob("*.log") if self.folder.is_dir() else ():
            self._offsets[path] = path.stat().st_size

    def poll(self) -> None:
        if not self.folder.is_dir():
            return
        # Oldest change first, so that a finished stage's last lines come before the next's.
        for path in sorted(self.folder.glob("*.log"), key=lambda p: p.stat().st_mtime):
            start = self._offsets.get(path, 0)
            size = path.stat().st_size
            if size <= start:
                continue
            with open(path, encoding="utf-8", errors="replace") as handle:
                handle.seek(start)
                chunk = handle.read()
            complete = chunk.rsplit("\n", 1)[0] if "\n" in chunk else ""
            self._offsets[path] = start + len(complete.encode("utf-8")) + (1 if complete else 0)
            for line in complete.splitlines():
                if line.strip():
                    print(f"  {path.stem:<16} {_LOG_PREFIX.sub('', line)}", file=self.out,
                          flush=True)

    def follow(self) -> None:
        while not self._stop.wait(0.5):
            self.poll()
        self.poll()

    def __enter__(self):
        self._thread = threading.Thread(target=self.follow, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def failed_step(logs: Path, since: float) -> str:
    """The step that failed, as `rule: its own error line (log: path)`."""
    recent = [p for p in logs.glob("*.log") if p.stat().st_mtime >= since - 1] \
        if logs.is_dir() else []
    for path in sorted(recent, key=lambda p: p.stat().st_mtime, reverse=True):
        lines = [line for line in path.read_text("utf-8", errors="replace").splitlines()
                 if line.strip()]
        errors = [line for line in lines if "error:" in line.lower() or "Error" in line]
        if errors:
            message = errors[-1].split("cmosynth: error: ", 1)[-1]
            return f"{path.stem}: {_LOG_PREFIX.sub('', message)} (log: {path})"
    return f"a step failed; see the logs in {logs}"


def run_topic(topic_path: str | Path, outputs: str | Path = "outputs", until: str | None = None,
              cores: int = 1, dry_run: bool = False, out=None, *, update: bool = False,
              wait: float = 0.0) -> dict:
    """Run every stage for one topic and return the run's summary.

    `update` asks for an earlier run to extend (a living review's scheduled update). A
    lock in the topic's outputs folder keeps two runs of one topic from overlapping: the
    second waits up to `wait` seconds, then stops with a message."""
    out = out or sys.stderr
    topic = checked_topic(topic_path)
    until_date = parse_date(until, "--until") if until else None
    snakefile = find_snakefile()
    outputs = Path(outputs).resolve()
    topic_dir = outputs / topic["name"]
    if update and not earlier_runs(topic, topic_dir):
        raise ConfigError(topic_path, None, f"no earlier search run in {topic_dir / 'search'} "
                          "to update; start the review with `cmosynth run`")
    config = {"topics": [str(Path(topic_path).resolve())], "outputs": str(outputs),
              "until": until_date.isoformat() if until_date else None}
    started = time.time()
    verb = "update" if update else "run"
    print(f"cmosynth {verb}: {topic['name']} ({topic['title']}) into {topic_dir}", file=out)
    topic_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(topic_dir / ".cmosynth.lock")
    try:
        with lock.acquire(timeout=wait):
            try:
                with LogFollower(topic_dir / "logs", out):
                    _snakemake(snakefile, config, cores, dry_run)
            except WorkflowFailed as failure:
                raise WorkflowFailed(failed_step(topic_dir / "logs", started)) from failure
    except Timeout:
        raise WorkflowFailed(f"another run or update of topic {topic['name']} is in progress "
                             f"(lock {lock.lock_file}); wait for it to end, or pass --wait "
                             "SECONDS") from None
    summary = run_summary(topic_dir) if not dry_run else {}
    summary["seconds"] = round(time.time() - started, 1)
    return summary


def earlier_runs(topic: dict, topic_dir: Path) -> list[dict]:
    """The completed search runs of the topic's current query."""
    from cmosynth.pubmed.run import completed_runs, query_hash

    return completed_runs(topic_dir / "search", query_hash(topic["search"]["pubmed"]))


def _snakemake(snakefile: Path, config: dict, cores: int, dry_run: bool) -> None:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import (ConfigSettings, DAGSettings, ExecutionSettings,
                                          OutputSettings, ResourceSettings)

    # A dry run shows Snakemake's plan; a real run shows the stages' own lines instead.
    quiet = ({Quietness.PROGRESS, Quietness.HOST} if dry_run else {Quietness.ALL})
    try:
        with SnakemakeApi(OutputSettings(quiet=quiet, dryrun=dry_run,
                                         enable_file_logging=False)) as api:
            workflow = api.workflow(
                # One NCBI-calling job at a time, whatever the cores: the rate limit is
                # the service's, not the machine's.
                resource_settings=ResourceSettings(cores=cores, resources={"ncbi": 1}),
                config_settings=ConfigSettings(
                    config=config, configfiles=[snakefile.parent / "config" / "config.yaml"]),
                snakefile=snakefile, workdir=Path.cwd())
            # A run killed mid-way (power cut, SIGKILL) leaves Snakemake's lock and outputs
            # marked incomplete: the next run redoes those jobs instead of stopping. The
            # topic's own lock (run_topic) already keeps two runs of a topic apart, and
            # topics write disjoint outputs, so Snakemake's directory lock is not needed.
            dag = workflow.dag(DAGSettings(force_incomplete=True))
            if dry_run:
                dag.execute_workflow(executor="dryrun")
            else:
                dag.execute_workflow(execution_settings=ExecutionSettings(keep_going=False,
                                                                          lock=False))
    except CmosynthError:
        raise
    except Exception as error:  # Snakemake's own errors: the step's log says why
        cause = error
        while cause.__cause__ is not None or cause.__context__ is not None:
            inner = cause.__cause__ or cause.__context__
            if isinstance(inner, CmosynthError):
                raise inner from None
            cause = inner
        raise WorkflowFailed(str(error).splitlines()[0] if str(error) else type(error).__name__)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def run_summary(topic_dir: Path) -> dict:
    """What the run produced, read back from the stage contracts."""
    duplicates = 0
    records = topic_dir / "dedup" / "records.jsonl"
    if records.exists():
        with open(records, encoding="utf-8") as handle:
            duplicates = sum(1 for line in handle if line.strip()
                             and json.loads(line).get("duplicate_of"))
    screen = topic_dir / "screen" / "summary.json"
    screening = json.loads(screen.read_text("utf-8")) if screen.exists() else {}
    theories = topic_dir / "synthesis" / "theory_status.csv"
    statuses: dict[str, int] = {}
    if theories.exists():
        with open(theories, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    new_records = topic_dir / "report" / "new_records.csv"
    return {
        "records found": _count_lines(topic_dir / "search" / "records.jsonl"),
        "new in this update": max(_count_lines(new_records) - 1, 0),
        "duplicates linked": duplicates,
        "screened": screening.get("records_screened", 0),
        "included": screening.get("included", 0),
        "awaiting a reviewer": screening.get("undecided", 0),
        "CMOCs": max(_count_lines(topic_dir / "extract" / "cmo.csv") - 1, 0),
        "theories": ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())),
        "report": str(topic_dir / "report" / "index.html"),
    }
