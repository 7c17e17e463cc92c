"""Bad topic and codebook files, as people write them: every command answers with exit
code 2 and one line naming the file and the line or key, never a traceback, and writes
nothing."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path

import pytest

from cmosynth.cli import main
from conftest import REPO

GOOD_SEARCH = "search: {pubmed: {query: 'co-production[tiab]', mindate: '2020/01/01'}}\n"
CODEBOOK = REPO / "config" / "codebooks" / "coproduction.yaml"

TOPICS = {
    "malformed YAML": ("name: x\ntitle: [unclosed\n" + GOOD_SEARCH, r"topic.yaml:3: .*YAML"),
    "not a mapping": ("- a list\n- of things\n", r"holds a YAML list, not keys and values"),
    "empty file": ("", r"name: required key is missing|empty"),
    "unknown key": ("name: x\ntitle: t\nbogus: 1\n" + GOOD_SEARCH, r"bogus: unknown key"),
    "misspelt key": ("name: x\ntitle: t\nscren: {}\n" + GOOD_SEARCH, r"scren: unknown key.*screen"),
    "wrong type": ("name: x\ntitle: t\nsearch: {pubmed: {query: q, mindate: '2020', "
                   "batch_size: many}}\n", r"search.pubmed.batch_size: 'many' is not of type"),
    "impossible date": ("name: x\ntitle: t\nsearch: {pubmed: {query: q, mindate: '2020/13/45'}}\n",
                        r"search.pubmed.mindate: '2020/13/45' is not a date"),
    "empty query": ("name: x\ntitle: t\nsearch: {pubmed: {query: '  ', mindate: '2020'}}\n",
                    r"search.pubmed.query"),
    "unbalanced query": ("name: x\ntitle: t\nsearch: {pubmed: {query: '(a OR b', "
                         "mindate: '2020'}}\n", r"search.pubmed.query"),
    "name with a path separator": ("name: a/b\ntitle: t\n" + GOOD_SEARCH, r"name: 'a/b' is not a safe name"),
    "name climbing out": ("name: ..\ntitle: t\n" + GOOD_SEARCH, r"name: '\.\.' is not a safe name"),
    "missing import": (f"name: x\ntitle: t\ncodebook: {CODEBOOK}\nsearch: {{pubmed: {{query: q, "
                       "mindate: '2020'}, imports: [nowhere.ris]}\n",
                       r"search.imports: file not found: nowhere.ris"),
    "missing codebook": ("name: x\ntitle: t\ncodebook: nowhere.yaml\n" + GOOD_SEARCH,
                         r"codebook: no codebook at nowhere.yaml"),
    "pattern with * in a folder": (f"name: x\ntitle: t\ncodebook: {CODEBOOK}\n" + GOOD_SEARCH +
                                   "screen: {decisions: 'reviews/*/a.csv'}\n",
                                   r"screen.decisions: .*only the file name may hold"),
}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command as `cmosynth ARGS` runs it, in this process (a refusal comes before any
    work, so starting a new Python for each case would only cost time)."""
    error = io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(error):
            code = main(list(args))
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["cmosynth", *args], code, "", error.getvalue())


def assert_one_line(done: subprocess.CompletedProcess, pattern: str, file: str) -> None:
    import re

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmosynth: error: "), done.stderr
    assert file in lines[0] and re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("case", sorted(TOPICS))
def test_a_bad_topic_is_refused_in_one_line_by_run(tmp_path, case):
    text, pattern = TOPICS[case]
    (tmp_path / "topic.yaml").write_text(text, encoding="utf-8")
    assert_one_line(run("run", "topic.yaml", cwd=tmp_path), pattern, "topic.yaml")
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.*"))


@pytest.mark.parametrize("case", ["malformed YAML", "unknown key", "impossible date",
                                  "empty query", "name climbing out"])
def test_a_bad_topic_is_refused_in_one_line_by_a_stage(tmp_path, case):
    text, pattern = TOPICS[case]
    (tmp_path / "topic.yaml").write_text(text, encoding="utf-8")
    assert_one_line(run("screen", "topic.yaml", cwd=tmp_path), pattern, "topic.yaml")


CODEBOOKS = {
    "malformed YAML": ("concepts: [unclosed\n", r"YAML"),
    "unknown key": ("bogus: 1\n", r"bogus"),
    "wrong type": ("name: b\ntitle: t\nconcepts: 5\n", r"concepts|required key"),
}


@pytest.mark.parametrize("case", sorted(CODEBOOKS))
def test_a_bad_codebook_is_refused_in_one_line_naming_it(tmp_path, case):
    text, pattern = CODEBOOKS[case]
    (tmp_path / "book.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "topic.yaml").write_text("name: x\ntitle: t\ncodebook: book.yaml\n" + GOOD_SEARCH,
                                         encoding="utf-8")
    assert_one_line(run("run", "topic.yaml", cwd=tmp_path), pattern, "book.yaml")
