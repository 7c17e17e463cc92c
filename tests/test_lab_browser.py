"""The workspace in a real browser: headless Chromium (Debian package `chromium`) driven by
Playwright. A reviewer screens by keyboard, settles a duplicate pair, codes a record and
resolves a conflict; the files on disk are then exactly what the pipeline reads, and the
stages rerun on them follow. Each view's screenshot is written to CMOSYNTH_SCREENSHOTS
(default: the test's temporary folder)."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from lab_review import run_stages, write_topic

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (test extra)")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: "
                                 "apt-get install -y chromium (.ci/run does)")]


def rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    """A review with outputs, served by the workspace for reviewer alice."""
    import uvicorn

    from cmosynth.web.app import create_app
    from cmosynth.web.workspace import Workspace

    folder = tmp_path_factory.mktemp("lab")
    previous = os.getcwd()
    os.chdir(folder)       # reviewer files live under reviews/, relative to the run folder
    try:
        topic = write_topic(folder)
        run_stages(topic, folder / "outputs")
        workspace = Workspace(topic, folder / "outputs", "alice")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(workspace, port=port),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        yield {"url": f"http://127.0.0.1:{port}", "folder": folder, "topic": topic,
               "workspace": workspace, "outputs": folder / "outputs",
               "shots": Path(os.environ.get("CMOSYNTH_SCREENSHOTS") or folder / "screenshots")}
        server.should_exit = True
        thread.join(timeout=10)
    finally:
        os.chdir(previous)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, dialogs = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.errors, page.dialogs = errors, dialogs
    yield page
    assert not errors, f"JavaScript errors: {errors}"
    assert not dialogs, f"a script in record text ran: {dialogs}"
    page.close()


def screenshot(page, review, name: str) -> Path:
    review["shots"].mkdir(parents=True, exist_ok=True)
    path = review["shots"] / f"lab_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


ON_TOPIC = ("co-produc", "co-design", "partnership", "involvement", "participation",
            "collaboration", "knowledge mobilisation")


def key_for(title: str) -> str:
    """The reviewer's call: include what is about co-production or collaboration."""
    return "i" if any(word in title.lower() for word in ON_TOPIC) else "e"


def test_screening_by_keyboard_writes_each_decision_in_priority_order(review, page):
    page.goto(review["url"] + "/screen")
    card = page.locator("#card")
    seen, keys = [], []
    for n in range(10):
        record_id = card.get_attribute("data-record")
        seen.append(record_id)
        key = key_for(page.locator("#record-title").inner_text())
        if key == "e":
            page.keyboard.press("2")     # the second exclusion reason
        keys.append(key)
        page.keyboard.press(key)
        page.wait_for_function("id => document.getElementById('card').dataset.record !== id",
                               arg=record_id)
    decisions = rows(review["folder"] / "reviews" / "labtest" / "screening" / "alice.csv")
    assert [d["record_id"] for d in decisions] == seen
    assert [d["decision"] for d in decisions] == [
        "include" if k == "i" else "exclude" for k in keys]
    reasons = review["workspace"].exclusion_reasons()
    assert all(d["reason"] == (reasons[1] if d["decision"] == "exclude" else "")
               for d in decisions)
    assert {d["reviewer"] for d in decisions} == {"alice"}
    assert page.locator("#decided").inner_text().startswith("10 of")

    # undo takes back the last decision, from the file too, and shows its record again
    page.keyboard.press("u")
    page.wait_for_function("id => document.getElementById('card').dataset.record === id",
                           arg=seen[-1])
    assert len(rows(review["folder"] / "reviews" / "labtest" / "screening" / "alice.csv")) == 9
    page.keyboard.press("i")
    page.wait_for_function("id => document.getElementById('card').dataset.record !== id",
                           arg=seen[-1])
    screenshot(page, review, "screen")

    # screen the rest: the record whose title holds <script> shows as text
    while card.get_attribute("data-record"):
        record_id = card.get_attribute("data-record")
        title = page.locator("#record-title").inner_text()
        if record_id == "pmid:90000006":
            assert title.startswith("<script>alert('x')</script> Co-production & health care")
        page.keyboard.press("m" if key_for(title) == "i" else "e")
        page.wait_for_function("id => document.getElementById('card').dataset.record !== id",
                               arg=record_id)
    assert "Every record is screened" in card.inner_text()
    assert "pmid:90000006" in {d["record_id"] for d in rows(
        review["folder"] / "reviews" / "labtest" / "screening" / "alice.csv")}


def test_a_duplicate_pair_is_marked_with_one_key(review, page):
    page.goto(review["url"] + "/duplicates")
    pair = page.locator(".pair").first
    assert "(vol 24, 1101, 2021)" in pair.locator("mark.diff").first.inner_text()
    screenshot(page, review, "duplicates")
    page.keyboard.press("s")
    page.wait_for_selector(".pair.decided")
    written = rows(review["folder"] / "reviews" / "labtest" / "duplicates" / "alice.csv")
    assert written == [{"record_id_a": "doi:10.1111/hex.90013", "record_id_b": "pmid:90000001",
                        "decision": "duplicates", "reviewer": "alice", "reason": ""}]


def test_coding_a_record_saves_roles_concepts_and_a_linked_cmoc(review, page):
    page.goto(review["url"] + "/code?record=pmid:90000001")
    sentences = page.locator("li.sentence")
    assert sentences.count() >= 5
    second = page.locator('li.sentence[data-sentence="2"]')
    chip = second.locator('.chip[data-role="context"]')
    was_on = "on" in (chip.get_attribute("class") or "")
    chip.click()
    page.wait_for_selector('li.sentence[data-sentence="2"].coded')
    coding_file = review["folder"] / "reviews" / "labtest" / "coding" / "alice.csv"
    coded = rows(coding_file)
    assert coded[-1]["sentence"] == "2" and ("context" in coded[-1]["roles"]) != was_on
    assert coded[-1]["text"].startswith("Mental health services in England")

    # concepts: open sentence 4's picker and give it one mechanism concept only
    fourth = page.locator('li.sentence[data-sentence="4"]')
    fourth.locator("details.concepts summary").click()
    for box in fourth.locator(".concept-picker input").all():
        box.set_checked(False)
    fourth.locator('.concept-picker input[value="mech_trust"]').check()
    fourth.locator("[data-save-concepts]").click()
    page.wait_for_load_state("load")
    page.wait_for_selector('li.sentence[data-sentence="4"][data-concepts="mech_trust"]')
    assert rows(coding_file)[-1]["concepts"] == "mech_trust"

    # link a CMOC: context sentence 2, mechanism sentence 4, outcome sentence 5
    form = page.locator("#link")
    form.locator('select[name="context"]').select_option("2")
    form.locator('select[name="mechanism"]').select_option("4")
    form.locator('select[name="outcome"]').select_option("5")
    form.locator('input[name="summary"]').fill("Shared power builds trust, so users take part")
    form.locator('button[type="submit"]').click()
    page.wait_for_selector("table.cmocs >> text=R1")
    screenshot(page, review, "code")
    linked = rows(review["folder"] / "reviews" / "labtest" / "configurations" / "alice.csv")
    assert linked[-1]["cmoc"] == "R1" and linked[-1]["mechanism_sentence"] == "4"
    assert linked[-1]["mechanism"] == "mech_trust"
    assert linked[-1]["summary"] == "Shared power builds trust, so users take part"


def test_a_conflict_between_two_reviewers_is_resolved_in_the_consensus_file(review, page):
    bob = review["folder"] / "reviews" / "labtest" / "screening" / "bob.csv"
    alice = rows(review["folder"] / "reviews" / "labtest" / "screening" / "alice.csv")
    latest = {d["record_id"]: d["decision"] for d in alice}
    # bob (by hand, in his own file) disagrees on the first record and agrees on the rest
    first = alice[0]["record_id"]
    with open(bob, "w", encoding="utf-8", newline="") as handle:
        handle.write("record_id,decision,reason,reviewer\n")
        for record_id, decision in latest.items():
            flipped = "exclude" if decision == "include" else "include"
            handle.write(f"{record_id},{flipped if record_id == first else decision},"
                         f"{'not about services' if record_id == first else ''},bob\n")
    page.goto(review["url"] + "/conflicts")
    conflict = page.locator(f'article.conflict[data-record="{first}"]')
    assert "bob" in conflict.inner_text() and "alice" in conflict.inner_text()
    assert "Cohen's κ" in page.locator("section.panel").first.inner_text()
    conflict.locator("input.reason").fill("settled at the team meeting")
    conflict.locator('[data-consensus="exclude"]').click()
    page.wait_for_selector(f'article.conflict.settled[data-record="{first}"]')
    screenshot(page, review, "conflicts")
    consensus = rows(review["folder"] / "reviews" / "labtest" / "screening" / "consensus.csv")
    assert consensus == [{"record_id": first, "decision": "exclude",
                          "reason": "settled at the team meeting", "reviewer": "consensus"}]


def test_the_overview_shows_counts_and_the_pipeline_follows_the_files(review, page):
    page.goto(review["url"] + "/overview")
    assert "PRISMA 2020" in page.inner_text("main")
    screenshot(page, review, "overview")

    # what the pipeline reads: rerun the stages on the reviewer files the browser wrote
    folder = run_stages(review["topic"], review["outputs"])
    screening = {row["record_id"]: row for row in rows(folder / "screen" / "screening.csv")}
    # a decision on a record now linked as a duplicate applies to its kept record
    aliases = {"doi:10.1111/hex.90013": "pmid:90000001"}
    alice = {aliases.get(d["record_id"], d["record_id"]): d for d in rows(
        review["folder"] / "reviews" / "labtest" / "screening" / "alice.csv")}
    consensus = rows(review["folder"] / "reviews" / "labtest" / "screening" / "consensus.csv")
    settled = consensus[0]["record_id"]
    for record_id, decision in alice.items():
        if record_id in screening and record_id != settled:
            assert screening[record_id]["decided_by"] == "reviewer"
            expected = "include" if decision["decision"] == "maybe" else decision["decision"]
            assert screening[record_id]["decision"] == expected, record_id
    assert screening[settled]["decision"] == "exclude"
    records = {r["record_id"]: r for r in __import__("cmosynth.records", fromlist=["x"])
               .read_records(folder / "dedup" / "records.jsonl")}
    assert records["doi:10.1111/hex.90013"]["duplicate_of"] == "pmid:90000001"
    assert records["doi:10.1111/hex.90013"]["dup_rule"] == "reviewer"

    # the coded record (included: alice's last decision on it, or its duplicate, was not
    # an exclusion) has exactly her CMOC, her concepts and her roles
    assert screening["pmid:90000001"]["decision"] == "include"
    cmo = [r for r in rows(folder / "extract" / "cmo.csv") if r["record_id"] == "pmid:90000001"]
    assert [r["method"] for r in cmo] == ["reviewer"]
    assert cmo[0]["summary"] == "Shared power builds trust, so users take part"
    assert cmo[0]["mechanism"] == "mech_trust"
    sentences = {int(r["sentence"]): r for r in rows(folder / "extract" / "sentences.csv")
                 if r["record_id"] == "pmid:90000001"}
    assert sentences[4]["concepts"] == "mech_trust" and sentences[4]["method"] == "reviewer"
    coded = rows(review["folder"] / "reviews" / "labtest" / "coding" / "alice.csv")
    assert sentences[2]["roles"] == next(r["roles"] for r in reversed(coded)
                                         if r["sentence"] == "2").replace("none", "")
