"""LLM suggestions through an OpenAI-compatible chat endpoint: a stub server on 127.0.0.1
answers like a chat model; only verbatim, codebook-coded suggestions reach the table."""

from __future__ import annotations

import csv
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cmosynth.cli import main
from cmosynth.files import write_jsonl
from cmosynth.records import new_record

ABSTRACT = ("RESULTS: Protected time for joint meetings built trust between the partners. "
            "Communication between the two organisations improved.")
SECRET = "sk-test-not-a-real-key"


class ChatStub(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions with the suggestions in `answer`, recording requests."""

    answer: dict = {}
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                "body": body})
        reply = {"id": "stub", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop", "message": {
                     "role": "assistant", "content": "```json\n" + json.dumps(self.answer) + "\n```"}}]}
        data = json.dumps(reply).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def chat(monkeypatch):
    ChatStub.seen = []
    ChatStub.answer = {"cmocs": [
        {"mechanism": ["mech_trust"], "outcome": ["out_communication"],
         "mechanism_quote": "built trust between the partners",
         "outcome_quote": "Communication between the two organisations improved"},
        {"mechanism": ["mech_trust"], "outcome": ["out_communication"],      # not verbatim
         "mechanism_quote": "partners trusted each other deeply",
         "outcome_quote": "Communication between the two organisations improved"},
        {"context": ["ctx_made_up"], "outcome": ["out_coordination"],        # unknown concept
         "context_quote": "joint meetings", "outcome_quote": "Communication"},
    ]}
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CMOSYNTH_LLM_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("CMOSYNTH_LLM_MODEL", "stub-model")
    monkeypatch.setenv("CMOSYNTH_LLM_API_KEY", SECRET)
    yield ChatStub
    server.shutdown()
    server.server_close()


def test_llm_suggestions_are_marked_and_only_verbatim_ones_kept(tmp_path, chat, caplog):
    records = tmp_path / "in.jsonl"
    write_jsonl(records, [new_record("test", pmid="123", title="Trust in partnerships",
                                     abstract=ABSTRACT)])
    output = tmp_path / "cmo.csv"
    log_file = tmp_path / "extract.log"
    with caplog.at_level(logging.INFO, logger="cmosynth"):
        assert main(["--log", str(log_file), "extract", str(records), "--llm",
                     "-o", str(output)]) == 0
    rows = list(csv.DictReader(output.open(encoding="utf-8")))
    suggested = [r for r in rows if r["method"].startswith("llm")]
    assert len(suggested) == 1
    row = suggested[0]
    assert row["method"] == "llm(stub-model)-suggestion"
    assert row["mechanism"] == "mech_trust" and row["outcome"] == "out_communication"
    assert row["mechanism_quote"] in ABSTRACT and row["outcome_quote"] in ABSTRACT
    assert row["theory_id"] == "PT1" and 0 <= float(row["confidence"]) <= 1

    request = chat.seen[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == f"Bearer {SECRET}"
    assert request["body"]["model"] == "stub-model"
    assert "mech_trust" in request["body"]["messages"][0]["content"]       # codebook in prompt
    assert ABSTRACT in request["body"]["messages"][1]["content"]
    logged = log_file.read_text("utf-8") + caplog.text
    assert "stub-model" in logged and "realist reviewer" in logged       # model and prompt kept
    assert SECRET not in logged


def test_llm_switched_on_without_endpoint_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CMOSYNTH_LLM_URL", raising=False)
    records = tmp_path / "in.jsonl"
    write_jsonl(records, [new_record("test", pmid="1", title="A title")])
    assert main(["extract", str(records), "--llm", "-o", str(tmp_path / "cmo.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CMOSYNTH_LLM_URL" in err
