"""Topic files: defaults filled in, and errors that name the file, key and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cmosynth.config import load_topic, load_workflow_config, parse_date
from cmosynth.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

MINIMAL_TOPIC = """\
name: tiny
title: A tiny topic
search:
  pubmed:
    query: coproduction[tiab]
    mindate: "2020/01/01"
"""


def write(tmp_path: Path, text: str, name: str = "topic.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_topic_gets_every_default(tmp_path):
    topic = load_topic(write(tmp_path, MINIMAL_TOPIC))
    assert topic["search"]["pubmed"]["date_type"] == "edat"
    assert topic["search"]["pubmed"]["max_per_slice"] == 9999
    assert topic["search"]["imports"] == []
    assert topic["description"] == ""
    assert topic["codebook"].endswith("codebooks/tiny.yaml")


def test_default_topic_file_is_valid():
    topic = load_topic(REPO / "config" / "topics" / "coproduction.yaml")
    assert topic["name"] == "coproduction"
    assert "coproduction[tiab]" in topic["search"]["pubmed"]["query"]


def test_workflow_config_is_valid():
    config = load_workflow_config(REPO / "config" / "config.yaml")
    assert config["topics"] == ["config/topics/coproduction.yaml"]


def test_missing_query_names_the_key_and_line(tmp_path):
    path = write(tmp_path, MINIMAL_TOPIC.replace("    query: coproduction[tiab]\n", ""))
    with pytest.raises(ConfigError) as info:
        load_topic(path)
    message = str(info.value)
    assert str(path) in message
    assert "search.pubmed.query" in message
    assert "line 5" in message  # the `pubmed:` mapping that lacks it


def test_misspelt_key_is_reported(tmp_path):
    path = write(tmp_path, MINIMAL_TOPIC + "serach: {}\n")
    with pytest.raises(ConfigError, match="serach"):
        load_topic(path)


def test_bad_name_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, MINIMAL_TOPIC.replace("name: tiny", "name: Tiny Topic"))
    with pytest.raises(ConfigError, match=r"name: .*line 1"):
        load_topic(path)


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"topic.yaml:2: .*fix the YAML syntax"):
        load_topic(path)


def test_cli_reports_bad_topic_in_one_line(tmp_path):
    path = write(tmp_path, MINIMAL_TOPIC.replace("name: tiny\n", ""))
    result = subprocess.run([sys.executable, "-m", "cmosynth", "search", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "name" in lines[0] and str(path) in lines[0]


@pytest.mark.parametrize("text, expected", [
    ("2020", "2020-01-01"), ("2020/03", "2020-03-01"), ("2020/03/15", "2020-03-15"),
    ("2020-03-15", "2020-03-15"),
])
def test_pubmed_date_forms_are_accepted(text, expected):
    assert parse_date(text, "mindate").isoformat() == expected


def test_impossible_date_is_an_error():
    with pytest.raises(ConfigError, match="until"):
        parse_date("2020-13-45", "until")
