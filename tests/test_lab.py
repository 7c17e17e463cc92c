"""The workspace without a browser: how reviewer files are written (atomic, appended,
one per reviewer, hand edits kept), where they live, the screening queue, and the
app's safety (CSRF, host, token, escaping, no path outside the report folder)."""

from __future__ import annotations

import csv
import os
import threading
from pathlib import Path

import pytest

from cmosynth.errors import ConfigError, InputError
from cmosynth.reviewers import (COLUMNS, append_rows, patterns, remove_last_row,
                                reviewer_file, reviewer_files)
from eutils_server import eutils_server  # noqa: F401 (fixture)
from lab_review import run_stages, write_topic

httpx = pytest.importorskip("httpx", reason="httpx is not installed (test extra)")


def read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


# --- where reviewer files live ----------------------------------------------------------
def test_an_empty_key_means_one_file_per_reviewer_under_reviews(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    topic = {"name": "t", "screen": {"decisions": None}, "dedup": {}, "extract": {}}
    assert patterns(topic, "decisions") == ["reviews/t/screening/*.csv"]
    assert reviewer_file(topic, "decisions", "alice") == Path("reviews/t/screening/alice.csv")
    assert reviewer_files(topic, "decisions") == []
    for name in ("bob", "alice", "consensus"):
        append_rows(reviewer_file(topic, "decisions", name), [{"record_id": "x"}],
                    COLUMNS["decisions"])
    (tmp_path / "reviews" / "t" / "screening" / "notes.txt").write_text("not a csv")
    assert [p.name for p in reviewer_files(topic, "decisions")] == [
        "alice.csv", "bob.csv", "consensus.csv"]
    assert reviewer_files({**topic, "screen": {"decisions": []}}, "decisions") == []


def test_a_listed_file_is_the_reviewers_when_named_after_them():
    topic = {"name": "t", "_path": "t.yaml", "screen": {"decisions": ["a/alice.csv"]}}
    assert reviewer_file(topic, "decisions", "alice") == Path("a/alice.csv")
    with pytest.raises(ConfigError, match="screen.decisions.*names no file for reviewer 'bob'"):
        reviewer_file(topic, "decisions", "bob")


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "x" * 41, "a b"])
def test_a_reviewer_name_cannot_lead_outside_the_reviews_folder(name):
    with pytest.raises(ConfigError, match="--reviewer"):
        reviewer_file({"name": "t", "screen": {}}, "decisions", name)


# --- writing a person's file -----------------------------------------------------------
def test_rows_are_appended_after_what_is_on_disk(tmp_path):
    path = tmp_path / "alice.csv"
    append_rows(path, [{"record_id": "r1", "decision": "include"}], COLUMNS["decisions"])
    append_rows(path, [{"record_id": "r2", "decision": "exclude", "reason": 'says "no", twice'}],
                COLUMNS["decisions"])
    assert path.read_text("utf-8") == ('record_id,decision,reason,reviewer\nr1,include,,\n'
                                       'r2,exclude,"says ""no"", twice",\n')


def test_a_hand_edited_file_keeps_its_columns_encoding_and_line_ends(tmp_path):
    path = tmp_path / "alice.csv"
    # Excel's way: BOM, CRLF, its own column order, an extra column, no final newline
    path.write_bytes("\ufeffreviewer,Record_ID,note,decision,reason\r\nalice,r1,mine,yes,\r\n"
                     "alice,r2,,no,off topic".encode("utf-8"))
    append_rows(path, [{"record_id": "r3", "decision": "maybe", "reviewer": "alice"}],
                COLUMNS["decisions"])
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.endswith(b"alice,r1,mine,yes,\r\nalice,r2,,no,off topic\r\nalice,r3,,maybe,\r\n")


def test_a_file_without_a_column_the_workspace_writes_is_refused_not_rewritten(tmp_path):
    path = tmp_path / "alice.csv"
    path.write_text("record_id,decision\nr1,include\n", encoding="utf-8")
    with pytest.raises(InputError, match="lacks column.*reason"):
        append_rows(path, [{"record_id": "r2", "decision": "exclude", "reason": "why"}],
                    COLUMNS["decisions"])
    assert path.read_text("utf-8") == "record_id,decision\nr1,include\n"
    append_rows(path, [{"record_id": "r2", "decision": "exclude"}], COLUMNS["decisions"])
    assert path.read_text("utf-8").endswith("r1,include\nr2,exclude\n")


def test_a_hand_made_file_without_the_reviewer_column_is_added_to(tmp_path):
    """A coding file copied from sentences.csv by hand has no reviewer or section column:
    the file's name says who coded it, so the workspace adds rows without them."""
    path = tmp_path / "alice.csv"
    path.write_text("record_id,sentence,roles\npmid:1,2,context\n", encoding="utf-8")
    append_rows(path, [{"record_id": "pmid:1", "sentence": 3, "section": "abstract",
                        "roles": "outcome", "reviewer": "alice", "text": "A sentence."}],
                COLUMNS["coding"])
    assert path.read_text("utf-8") == ("record_id,sentence,roles\npmid:1,2,context\n"
                                       "pmid:1,3,outcome\n")
    with pytest.raises(InputError, match="lacks column.*reviewer"):
        append_rows(path, [{"record_id": "pmid:1", "sentence": 4, "roles": "",
                            "reviewer": "consensus"}], COLUMNS["coding"])


def test_a_write_that_fails_halfway_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "alice.csv"
    append_rows(path, [{"record_id": "r1", "decision": "include"}], COLUMNS["decisions"])
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        append_rows(path, [{"record_id": "r2", "decision": "include"}], COLUMNS["decisions"])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".alice.csv.lock")] \
        == ["alice.csv"], "no temporary file is left behind"


def test_two_reviewers_writing_at_once_lose_nothing(tmp_path):
    def screen(name: str, file: Path) -> None:
        for k in range(60):
            append_rows(file, [{"record_id": f"r{k}", "decision": "include", "reviewer": name}],
                        COLUMNS["decisions"])

    shared = tmp_path / "shared.csv"     # two tabs of one reviewer: one file, in turn
    threads = [threading.Thread(target=screen, args=(name, file))
               for name, file in (("alice", tmp_path / "alice.csv"), ("bob", tmp_path / "bob.csv"),
                                  ("tab1", shared), ("tab2", shared))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(read(tmp_path / "alice.csv")) == len(read(tmp_path / "bob.csv")) == 60
    rows = read(shared)
    assert len(rows) == 120 and {r["reviewer"] for r in rows} == {"tab1", "tab2"}


def test_undo_removes_only_the_row_just_written(tmp_path):
    path = tmp_path / "alice.csv"
    append_rows(path, [{"record_id": "r1", "decision": "include"},
                       {"record_id": "r2", "decision": "exclude", "reason": "a\nmultiline reason"}],
                COLUMNS["decisions"])
    assert not remove_last_row(path, {"record_id": "r1"}), "r1 is not the last row"
    assert remove_last_row(path, {"record_id": "r2", "decision": "exclude"})
    assert path.read_text("utf-8") == "record_id,decision,reason,reviewer\nr1,include,,\n"
    with open(path, "a", encoding="utf-8") as handle:   # a hand edit since
        handle.write("r9,include,,alice\n")
    assert not remove_last_row(path, {"record_id": "r1", "decision": "include"})
    assert read(path)[-1]["record_id"] == "r9"


# --- the workspace over a real small review ---------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labunit")
    previous = os.getcwd()
    os.chdir(folder)
    try:
        topic = write_topic(folder)
        run_stages(topic, folder / "outputs")
        yield folder, topic
    finally:
        os.chdir(previous)


@pytest.fixture
def client(built, monkeypatch):
    from starlette.testclient import TestClient

    from cmosynth.web.app import create_app
    from cmosynth.web.workspace import Workspace

    folder, topic = built
    monkeypatch.chdir(folder)
    for kind in ("screening", "duplicates", "coding", "configurations"):
        for file in (folder / "reviews" / "labtest" / kind).glob("*.csv"):
            file.unlink()
    workspace = Workspace(topic, folder / "outputs", "alice")
    app = create_app(workspace, csrf="test-token")
    with TestClient(app, base_url="http://127.0.0.1:8765") as test_client:
        test_client.workspace = workspace
        test_client.folder = folder
        yield test_client


def post(client, url, body, token="test-token", **headers):
    return client.post(url, json=body, headers={"X-CSRF-Token": token, **headers})


def test_a_decision_without_the_csrf_token_is_refused_and_writes_nothing(client):
    card = client.get("/screen").text
    assert 'name="csrf-token" content="test-token"' in card
    answer = post(client, "/screen/decide", {"record_id": "pmid:90000001", "decision": "include"},
                  token="wrong")
    assert answer.status_code == 403
    assert client.get("/screen/decide").status_code == 405, "GET never changes state"
    assert not (client.folder / "reviews" / "labtest" / "screening" / "alice.csv").exists()


def test_a_request_for_another_host_or_from_another_site_is_refused(client):
    assert client.get("/screen", headers={"Host": "evil.example:8765"}).status_code == 400
    answer = post(client, "/screen/decide", {"record_id": "pmid:90000001", "decision": "include"},
                  Origin="http://evil.example")
    assert answer.status_code == 403


def test_another_host_needs_the_printed_token(built, monkeypatch):
    from starlette.testclient import TestClient

    from cmosynth.web.app import create_app
    from cmosynth.web.workspace import Workspace

    folder, topic = built
    monkeypatch.chdir(folder)
    app = create_app(Workspace(topic, folder / "outputs", "alice"), host="10.0.0.5",
                     token="s3cret")
    with TestClient(app, base_url="http://10.0.0.5:8765") as remote:
        assert remote.get("/overview").status_code == 403
        assert remote.get("/overview?token=nope").status_code == 403
        opened = remote.get("/overview?token=s3cret")       # sets the cookie, then redirects
        assert opened.status_code == 200 and "Where the review stands" in opened.text


def test_record_text_is_escaped_and_scripts_are_not_allowed_to_run(client):
    page = client.get("/code?record=pmid:90000006")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert "Journal of Testing &lt;b&gt;Markup&lt;/b&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/report/../dedup/records.jsonl", "/report/%2e%2e/labtest.yaml",
                                  "/report/..%2F..%2Flabtest.yaml", "/report//etc/passwd"])
def test_no_path_reaches_outside_the_report_folder(client, path):
    assert client.get(path).status_code == 404


def test_screening_decisions_undo_and_progress(client):
    first = client.get("/screen")
    workspace = client.workspace
    order = []
    for decision in ("include", "exclude", "maybe"):
        record = workspace.queue().next_record()["record_id"]
        order.append(record)
        reason = "wrong study design" if decision == "exclude" else ""
        answer = post(client, "/screen/decide", {"record_id": record, "decision": decision,
                                                 "reason": reason})
        assert answer.status_code == 200 and answer.json()["record_id"] != record
    assert first.status_code == 200
    rows = read(client.folder / "reviews" / "labtest" / "screening" / "alice.csv")
    assert [(r["record_id"], r["decision"], r["reason"]) for r in rows] == [
        (order[0], "include", ""), (order[1], "exclude", "wrong study design"),
        (order[2], "maybe", "")]
    undone = post(client, "/screen/undo", {}).json()
    assert undone["undone"] == order[2] and undone["record_id"] == order[2]
    assert len(read(client.folder / "reviews" / "labtest" / "screening" / "alice.csv")) == 2
    progress = workspace.queue().progress()
    assert (progress.decided, progress.included, progress.excluded) == (2, 1, 1)
    bad = post(client, "/screen/decide", {"record_id": "pmid:0", "decision": "include"})
    assert bad.status_code == 400 and "not among the records" in bad.json()["error"]
    bad = post(client, "/screen/decide", {"record_id": order[0], "decision": "perhaps"})
    assert bad.status_code == 400


def test_a_hand_edit_made_while_the_workspace_is_open_is_read(client):
    path = client.folder / "reviews" / "labtest" / "screening" / "alice.csv"
    record = client.workspace.queue().next_record()["record_id"]
    post(client, "/screen/decide", {"record_id": record, "decision": "include"})
    with open(path, "a", encoding="utf-8") as handle:       # the reviewer edits by hand
        handle.write("pmid:90000007,exclude,drug trial,alice\n")
    queue = client.workspace.queue()
    assert "pmid:90000007" in queue.mine and queue.mine["pmid:90000007"].reason == "drug trial"
    post(client, "/screen/decide", {"record_id": queue.next_record()["record_id"],
                                    "decision": "exclude"})
    rows = read(path)
    assert [r["record_id"] for r in rows][:2] == [record, "pmid:90000007"] and len(rows) == 3


def test_the_queue_retrains_on_decisions_and_offers_the_likeliest_inclusion(built, monkeypatch):
    from cmosynth.config import load_topic
    from cmosynth.records import read_records
    from cmosynth.screen.decisions import ReviewerDecision
    from cmosynth.screen.queue import ScreeningQueue

    folder, topic_path = built
    topic = load_topic(topic_path)
    records = [r for r in read_records(folder / "outputs" / "labtest" / "dedup" / "records.jsonl")
               if not r.get("duplicate_of")]
    queue = ScreeningQueue(topic, records, [], "alice")
    assert queue.ranking == "cold start"
    first = queue.next_record()
    assert "co-produc" in first["title"].lower() or "involvement" in first["title"].lower()
    queue.record(ReviewerDecision(first["record_id"], "include", "", "alice", "x", 1))
    queue.record(ReviewerDecision("pmid:90000007", "exclude", "", "alice", "x", 2))
    assert queue.retrain() and queue.ranking.startswith("active learning (2")
    following = queue.next_record()["record_id"]
    assert following not in (first["record_id"], "pmid:90000007")
    off_topic = {"pmid:90000008", "pmid:90000010", "pmid:90000012", "pmid:90000014"}
    assert following not in off_topic
    assert not queue.retrain(), "nothing new: no retraining"


def test_pairs_coding_and_conflicts_write_the_files_the_pipeline_reads(client):
    folder = client.folder
    assert post(client, "/duplicates/decide", {"a": "doi:10.1111/hex.90013", "b": "pmid:90000001",
                                               "same": False}).status_code == 200
    assert post(client, "/duplicates/decide", {"a": "pmid:1", "b": "pmid:2",
                                               "same": True}).status_code == 400
    assert post(client, "/code/sentence", {"record_id": "pmid:90000002", "sentence": 1,
                                           "roles": ["outcome"], "concepts": ["mech_trust"]}
                ).status_code == 200
    bad = post(client, "/code/sentence", {"record_id": "pmid:90000002", "sentence": 1,
                                          "roles": [], "concepts": ["nonsense"]})
    assert bad.status_code == 400 and "not in the codebook" in bad.json()["error"]
    linked = post(client, "/code/link", {"record_id": "pmid:90000002",
                                         "sentences": {"context": 2, "outcome": 3},
                                         "concepts": {"context": ["ctx_prior_relationships",
                                                                  "mech_trust"]},
                                         "theory_id": "PT1", "summary": "  a   line "})
    assert linked.json() == {"label": "R1"}
    assert post(client, "/code/link", {"record_id": "pmid:90000002",
                                       "sentences": {"context": 2}}).status_code == 400
    assert post(client, "/code/unlink", {"record_id": "pmid:90000002", "label": "R1"}
                ).status_code == 200
    reviews = folder / "reviews" / "labtest"
    assert read(reviews / "duplicates" / "alice.csv")[0]["decision"] == "not_duplicates"
    coding = read(reviews / "coding" / "alice.csv")[0]
    assert (coding["roles"], coding["concepts"], coding["reviewer"]) == ("outcome", "mech_trust",
                                                                         "alice")
    links = read(reviews / "configurations" / "alice.csv")
    # a concept of another role is dropped from an element; the withdrawal has no sentences
    assert links[0]["context"] == "ctx_prior_relationships" and links[0]["summary"] == "a line"
    assert links[1]["cmoc"] == "R1" and not links[1]["context_sentence"]

    from cmosynth.config import load_topic
    from cmosynth.dedup import read_override_files
    from cmosynth.extract.coding import read_coding
    from cmosynth.extract.codebook import load_codebook
    from cmosynth.extract.configurations import read_configurations

    topic = load_topic(folder / "labtest.yaml")
    assert read_override_files(reviewer_files(topic, "overrides"))[0].duplicates is False
    table = read_coding(reviewer_files(topic, "coding"))
    assert table[("pmid:90000002", 1)]["alice"].concepts == frozenset({"mech_trust"})
    configurations = read_configurations(reviewer_files(topic, "configurations"),
                                         load_codebook(topic["codebook"]))
    assert configurations == {"pmid:90000002": []}, "withdrawn: the coder's CMOCs stand"

    # a second reviewer codes the same sentence differently: a conflict, then a consensus
    with open(reviews / "coding" / "bob.csv", "w", encoding="utf-8") as handle:
        handle.write("record_id,sentence,roles,reviewer,text\n"
                     f"pmid:90000002,1,context,bob,{coding['text']}\n")
    page = client.get("/conflicts")
    assert "Sentence 1 of" in page.text and "bob" in page.text
    assert post(client, "/conflicts/coding", {"record_id": "pmid:90000002", "sentence": 1,
                                              "roles": ["context", "outcome"]}).status_code == 200
    settled = read(reviews / "coding" / "consensus.csv")[0]
    assert (settled["roles"], settled["reviewer"]) == ("context;outcome", "consensus")
    coding_table = read_coding(reviewer_files(topic, "coding"))
    assert coding_table[("pmid:90000002", 1)]["consensus"].roles == {"context", "outcome"}


def finished(client) -> None:
    """Wait for the workspace's run to end; it must have succeeded."""
    import time

    status = {}
    for _ in range(600):
        status = client.get("/run/status").json()
        if not status["running"]:
            break
        time.sleep(0.5)
    assert status["returncode"] == 0, status["tail"]


@pytest.mark.slow
def test_the_rerun_button_runs_the_workflow_and_the_views_follow(eutils_server, tmp_path,
                                                                  monkeypatch):
    from starlette.testclient import TestClient

    from cmosynth.web.app import create_app
    from cmosynth.web.workspace import Workspace

    monkeypatch.chdir(tmp_path)
    topic = write_topic(tmp_path)
    workspace = Workspace(topic, tmp_path / "outputs", "alice")
    with TestClient(create_app(workspace, csrf="t"), base_url="http://127.0.0.1") as client:
        assert "No run yet" in client.get("/overview").text
        assert client.get("/screen").status_code == 200      # says: run the workflow first
        assert post(client, "/run", {}, token="t").json() == {"running": True}
        assert post(client, "/run", {}, token="t").status_code == 400, "one run at a time"
        finished(client)
        # the workspace now has records to screen; that the next run reads a decision
        # made here is tested by test_workflow.py, which screens through the workspace
        assert workspace.queue().next_record() is not None
        overview = client.get("/overview").text
        assert "Where the review stands" in overview and "/report/index.html" in overview
        assert client.get("/report/index.html").status_code == 200
