"""SIGKILL at seeded random moments: of a search, of each later stage, of the whole
workflow, and of the workspace while a reviewer writes. After each kill the same command
is run again: it resumes and ends with outputs byte-identical to an uninterrupted run,
no line is duplicated or half-written, no temporary file is left among the outputs, and
no reviewer decision the workspace acknowledged is lost. 22 trials in all."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from eutils_server import clone_server, eutils_server  # noqa: F401 (fixtures)
from lab_review import CODEBOOK, RECORDS, write_topic
from test_search_run import UNTIL, write_topic as write_search_topic

CMOSYNTH = Path(sys.executable).parent / "cmosynth"
pytestmark = pytest.mark.skipif(not CMOSYNTH.exists(), reason="the cmosynth command is not installed")


def environment() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def killed(command: list[str], cwd: Path, after: float) -> bool:
    """Run `command`, SIGKILL it (and its children) `after` seconds in; False if it had
    already ended."""
    process = subprocess.Popen(command, cwd=cwd, env=environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout=after)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def completed(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def snapshot(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `folder` (relative name -> bytes), leaving out names in `skip`."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part in skip for part in p.relative_to(folder).parts)}


def assert_whole(files: dict[str, bytes]) -> None:
    """No temporary file left, and every JSON Lines or CSV file ends with a whole line."""
    leftovers = [name for name in files if name.endswith(".part") or "/.tmp" in name]
    assert leftovers == [], f"temporary files left among the outputs: {leftovers}"
    for name, data in files.items():
        if name.endswith((".jsonl", ".csv")) and data:
            assert data.endswith(b"\n"), f"{name} ends in the middle of a line"
        if name.endswith(".jsonl"):
            lines = data.decode().splitlines()
            for line in lines:
                json.loads(line)
            assert len(lines) == len(set(lines)), f"{name} repeats a line"


# --- a search -------------------------------------------------------------------------
def search_command(topic: Path) -> list[str]:
    return [str(CMOSYNTH), "search", str(topic), "--outputs", "out", "--until", UNTIL.isoformat()]


def search_outputs(folder: Path) -> dict[str, bytes]:
    """The search's records (each run's and the union) and its log without the clock."""
    files = snapshot(folder / "out")
    kept = {}
    for name, data in files.items():
        if name.endswith("search_log.json"):
            log = json.loads(data)
            for key in ("run_at", "started", "finished", "date_run", "time_run", "seconds",
                        "tool_version"):
                log.pop(key, None)
            kept[name.split("/")[-1]] = json.dumps(log, sort_keys=True).encode()
        elif name.endswith("records.jsonl"):
            kept["/".join(name.split("/")[-2:]) if "/search/records" not in name
                 else "records.jsonl"] = data
    return kept


SEARCH_REFERENCE: dict = {}


@pytest.mark.parametrize("seed", range(8))
def test_a_killed_search_resumes_to_the_records_of_an_uninterrupted_one(clone_server, tmp_path,
                                                                        seed):
    # every answer a little slow, so that the kill lands inside the search
    clone_server.random_faults(1.0, seed=seed, kinds=("slow",), slow_seconds=0.05)
    if not SEARCH_REFERENCE:        # the served records are the same for every trial
        (tmp_path / "reference").mkdir()
        write_search_topic(tmp_path / "reference", batch_size=5)
        started = time.perf_counter()
        completed(search_command(tmp_path / "reference" / "tiny.yaml"), tmp_path / "reference")
        SEARCH_REFERENCE.update(duration=time.perf_counter() - started,
                                outputs=search_outputs(tmp_path / "reference"))
    duration, reference = SEARCH_REFERENCE["duration"], SEARCH_REFERENCE["outputs"]
    (tmp_path / "killed").mkdir()
    write_search_topic(tmp_path / "killed", batch_size=5)

    after = random.Random(seed).uniform(0.5, duration)
    killed(search_command(tmp_path / "killed" / "tiny.yaml"), tmp_path / "killed", after)
    completed(search_command(tmp_path / "killed" / "tiny.yaml"), tmp_path / "killed")
    assert_whole(snapshot(tmp_path / "killed" / "out"))
    resumed = search_outputs(tmp_path / "killed")
    assert resumed.keys() == reference.keys()
    for name in reference:
        if name != "search_log.json":
            assert resumed[name] == reference[name], name


# --- each later stage -------------------------------------------------------------------
STAGES = {
    "dedup": lambda o: [str(CMOSYNTH), "dedup", str(RECORDS), "-o", f"{o}/dedup/records.jsonl",
                        "--review-pairs", f"{o}/dedup/pairs_to_review.csv"],
    "screen": lambda o: [str(CMOSYNTH), "screen", "labtest.yaml", "--outputs", "outputs"],
    # the rules coder: what is tested is how the stage writes, and it starts in a second
    "extract": lambda o: [str(CMOSYNTH), "extract", f"{o}/screen/included.jsonl", "--codebook",
                          str(CODEBOOK), "-o", f"{o}/extract/cmo.csv", "--sentences",
                          f"{o}/extract/sentences.csv", "--coder", "rules"],
    "synthesis": lambda o: [str(CMOSYNTH), "synthesize", f"{o}/extract/cmo.csv", "--records",
                            f"{o}/screen/included.jsonl", "--codebook", str(CODEBOOK),
                            "--topic", "labtest.yaml", "-o", f"{o}/synthesis"],
}


@pytest.fixture(scope="module")
def stage_reference(tmp_path_factory):
    """Every stage run once, uninterrupted: the outputs after each and its duration."""
    folder = tmp_path_factory.mktemp("stages")
    write_topic(folder)
    reference, durations = {}, {}
    for stage, command in STAGES.items():
        started = time.perf_counter()
        completed(command("outputs/labtest"), folder)
        durations[stage] = time.perf_counter() - started
        reference[stage] = snapshot(folder / "outputs" / "labtest" / stage)
    return folder, reference, durations


@pytest.mark.parametrize("seed", range(8))
def test_a_killed_stage_reruns_to_the_bytes_of_an_uninterrupted_one(stage_reference, tmp_path,
                                                                    seed):
    source, reference, durations = stage_reference
    stage = list(STAGES)[seed % len(STAGES)]
    shutil.copytree(source, tmp_path / "review")
    folder = tmp_path / "review"
    shutil.rmtree(folder / "outputs" / "labtest" / stage)
    after = random.Random(seed).uniform(0.2, durations[stage])
    killed(STAGES[stage]("outputs/labtest"), folder, after)
    completed(STAGES[stage]("outputs/labtest"), folder)
    rerun = snapshot(folder / "outputs" / "labtest" / stage)
    assert_whole(rerun)
    assert rerun == reference[stage]


# --- the whole workflow -------------------------------------------------------------------
def test_a_killed_workflow_run_resumes_to_the_tables_of_an_uninterrupted_one(eutils_server,
                                                                            tmp_path):
    tables = {}
    for name in ("reference", "killed"):
        folder = tmp_path / name
        folder.mkdir()
        topic = folder / "tiny.yaml"
        topic.write_text(yaml.safe_dump({
            "name": "tiny", "title": "A tiny topic", "codebook": str(CODEBOOK),
            "search": {"pubmed": {"query": "(coproduc*[tiab] OR co-produc*[tiab]) AND "
                                  "health[tiab]", "mindate": "2019/01/01"}},
            "extract": {"coder": "rules"}}), encoding="utf-8")
        command = [str(CMOSYNTH), "run", str(topic), "--until", "2025-12-31"]
        if name == "killed":
            # kill once screening has started, while later stages are still to come
            process = subprocess.Popen(command, cwd=folder, env=environment(),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
            log = folder / "outputs" / "tiny" / "logs" / "screen_records.log"
            deadline = time.monotonic() + 300
            while not log.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert process.poll() is None, "the run ended before it could be killed"
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        completed(command, folder)
        outputs = snapshot(folder / "outputs" / "tiny", skip=("logs", "benchmarks", "raw"))
        assert_whole(outputs)
        tables[name] = {k: v for k, v in outputs.items()
                        if k.endswith(".csv") and k.split("/")[0] in ("screen", "extract",
                                                                     "synthesis", "dedup")}
    assert tables["killed"] == tables["reference"]


# --- the workspace, while a reviewer writes -------------------------------------------------
@pytest.fixture(scope="module")
def screened_review(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labkill")
    write_topic(folder)
    for stage in ("dedup", "screen"):
        completed(STAGES[stage]("outputs/labtest"), folder)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("seed", range(5))
def test_a_killed_workspace_loses_no_decision_it_acknowledged(screened_review, tmp_path, seed):
    shutil.copytree(screened_review, tmp_path / "review")
    folder = tmp_path / "review"
    port = free_port()
    server = subprocess.Popen([str(CMOSYNTH), "lab", "labtest.yaml", "--reviewer", "alice",
                               "--port", str(port), "--no-browser"], cwd=folder,
                              env=environment(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    session = requests.Session()
    for _ in range(300):
        try:
            page = session.get(f"{url}/screen", timeout=5)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    record = page.text.split('data-record="', 1)[1].split('"', 1)[0]
    rng = random.Random(seed)
    kill_after = rng.randint(2, 9)
    acknowledged = []
    try:
        for n in range(14):
            if n == kill_after:
                # the kill lands while the next decision is being written
                threading_kill = subprocess.Popen(
                    ["sh", "-c", f"sleep {rng.uniform(0, 0.03):.3f}; kill -9 -{server.pid}"])
            decision = rng.choice(["include", "exclude", "maybe"])
            try:
                answer = session.post(f"{url}/screen/decide", timeout=10,
                                      json={"record_id": record, "decision": decision},
                                      headers={"X-CSRF-Token": token})
            except requests.RequestException:      # the server died mid-answer
                break
            if answer.status_code != 200:
                break
            acknowledged.append((record, decision))
            record = answer.json()["record_id"]
            if record is None:
                break
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    if kill_after < 14:
        threading_kill.wait()
    path = folder / "reviews" / "labtest" / "screening" / "alice.csv"
    data = path.read_bytes()
    assert data.endswith(b"\n"), "no half-written line"
    with open(path, encoding="utf-8", newline="") as handle:
        rows = [(r["record_id"], r["decision"]) for r in csv.DictReader(handle)]
    assert rows[:len(acknowledged)] == acknowledged, "every acknowledged decision is kept"
    assert len(rows) <= len(acknowledged) + 1, "at most the decision being made is extra"
    assert len({r for r, _ in rows}) == len(rows), "no decision is written twice"
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".part")]
    assert leftovers == [] or all(p.startswith(".alice.csv.") for p in leftovers)
