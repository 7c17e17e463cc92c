"""Topics people share: `cmosynth validate` finds everything a run would reject, one line
per problem with file, line and key; `cmosynth new-topic` scaffolds a topic that validates
and runs; the workflow refuses a broken topic when it parses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cmosynth.cli import main
from cmosynth.topics import check_topic, new_topic

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def scaffold(tmp_path, monkeypatch) -> Path:
    """A fresh topic from the template, in a folder of its own (paths are relative)."""
    monkeypatch.chdir(tmp_path)
    topic, _ = new_topic("falls", "config")
    return topic


def lines_of(problems) -> list[str]:
    return [str(p) for p in problems]


def break_topic(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), "utf-8")


def line_number(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
                if line.strip().startswith(text))


def test_a_new_topic_from_the_template_validates(scaffold):
    topic, problems = check_topic(scaffold)
    assert problems == [] and topic["name"] == "falls"
    assert Path(topic["codebook"]).read_text("utf-8").startswith("# The codebook of topic falls")


def test_a_new_topic_copied_from_another_keeps_its_comments_and_codebook(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = REPO / "config" / "topics" / "coproduction.yaml"
    topic_path, codebook_path = new_topic("coproduction-wales", "config", source)
    text = topic_path.read_text("utf-8")
    assert "name: coproduction-wales" in text and "# Block 2, the setting" in text
    assert codebook_path.read_text("utf-8").count("ctx_") == (
        REPO / "config" / "codebooks" / "coproduction.yaml").read_text("utf-8").count("ctx_")
    topic, problems = check_topic(topic_path)
    assert problems == [] and topic["codebook"] == str(codebook_path)


def test_new_topic_never_overwrites_a_file(scaffold, capsys):
    before = scaffold.read_bytes()
    assert main(["new-topic", "falls"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert scaffold.read_bytes() == before


BROKEN_TOPICS = {
    # kind: (text in the template, its replacement, key named, words in the message)
    "misspelt key": ("    languages: [eng]", "    langauges: [eng]",
                     "screen.criteria.langauges", "did you mean 'languages'?"),
    "unknown top-level key": ("dedup:\n", "dedupe: {}\ndedup:\n", "dedupe",
                              "did you mean 'dedup'?"),
    "missing required key": ('title: "New topic falls"\n', "", "title",
                             "required key is missing"),
    "impossible date": ('mindate: "2010/01/01"', 'mindate: "2000/13/45"',
                        "search.pubmed.mindate", "is not a date"),
    "unbalanced query": ("AND (health[tiab]", "AND (health[tiab] OR (care[tiab]",
                         "search.pubmed.query", "unbalanced brackets"),
    "empty query": ('''query: >-
      ("co-production"[tiab] OR coproduction[tiab] OR "co-design*"[tiab])
      AND (health[tiab] OR "health care"[tiab])''', 'query: ""', "search.pubmed.query",
                    "should be non-empty"),
    "unsafe name": ("name: falls", "name: Falls Prevention!", "name", "is not a safe name"),
    "value not allowed": ("date_type: edat", "date_type: xdat", "search.pubmed.date_type",
                          "allowed: edat, pdat, mdat"),
    "wrong type": ("target_recall: 0.95", "target_recall: high",
                   "screen.stopping.target_recall", "is not of type"),
    "missing import file": ("  imports: []", "  imports: [embase.ris]", "search.imports",
                            "file not found: embase.ris"),
    "missing decisions file": ("  decisions: null", "  decisions: screening/me.csv",
                               "screen.decisions", "file not found: screening/me.csv"),
    "missing codebook": ("codebook: config/codebooks/falls.yaml",
                         "codebook: config/codebooks/other.yaml", "codebook",
                         "no codebook at config/codebooks/other.yaml"),
    "YAML syntax": ("    languages: [eng]", "    languages: [eng", "", "fix the YAML"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_TOPICS))
def test_every_kind_of_broken_topic_is_one_line_with_file_line_and_key(scaffold, kind, capsys):
    old, new, key, words = BROKEN_TOPICS[kind]
    break_topic(scaffold, old, new)
    _, problems = check_topic(scaffold)
    assert len(problems) == 1, lines_of(problems)
    problem = problems[0]
    assert problem.key == key and words in problem.message, str(problem)
    if key and kind != "missing required key":
        assert problem.line == line_number(scaffold, key.split(".")[-1] + ":")
    assert main(["validate", str(scaffold)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == str(problem) and "Traceback" not in err


BROKEN_CODEBOOKS = {
    "role not allowed": ("    role: context", "    role: setting", "concepts.0.role",
                         "allowed: context, mechanism, outcome"),
    "theory names an unknown concept": ("    contexts: [ctx_shared_history]",
                                        "    contexts: [ctx_shared_histories]", "theories",
                                        "ctx_shared_histories"),
    "unknown source": ("    sources: [seed1]\n  - id: mech_trust",
                       "    sources: [seed9]\n  - id: mech_trust", "concepts", "seed9"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_CODEBOOKS))
def test_codebook_errors_name_the_codebook_and_key(scaffold, kind):
    old, new, key, words = BROKEN_CODEBOOKS[kind]
    codebook = scaffold.parent.parent / "codebooks" / "falls.yaml"
    break_topic(codebook, old, new)
    _, problems = check_topic(scaffold)
    assert len(problems) == 1, lines_of(problems)
    assert problems[0].path == str(codebook) and problems[0].key.startswith(key)
    assert words in problems[0].message


def test_every_problem_is_listed_not_only_the_first(scaffold):
    break_topic(scaffold, "  imports: []", "  imports: [a.ris, b.ris]")
    break_topic(scaffold, "  decisions: null", "  decisions: me.csv")
    _, problems = check_topic(scaffold)
    assert [p.message.split(" (")[0] for p in problems] == [
        "file not found: a.ris", "file not found: b.ris", "file not found: me.csv"]


def test_an_empty_import_is_an_error_as_it_is_when_read(scaffold, capsys):
    Path("empty.ris").write_text("\n", "utf-8")
    break_topic(scaffold, "  imports: []", "  imports: [empty.ris]")
    assert main(["validate", str(scaffold)]) == 2
    out = capsys.readouterr()
    assert "search.imports: empty.ris is empty: it holds no records; check the export" in out.err
    assert "warning" not in out.err and "valid" not in out.out


def test_the_workflow_refuses_a_broken_topic_when_it_parses(scaffold, tmp_path):
    break_topic(scaffold, 'mindate: "2010/01/01"', 'mindate: "2000/13/45"')
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(REPO / "config" / "config.yaml"),
         "--config", f"topics=[{scaffold.resolve()}]", "outputs=out"],
        capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0
    assert "search.pubmed.mindate: '2000/13/45' is not a date" in done.stdout + done.stderr
