"""Bad input: every reader of a user's files fails only with InputError, one line naming
the file (and the line where it makes sense), or reads the file correctly where it is
legitimately readable; the CLI prints that line, exits 2 and writes nothing.

Files are written by the tests themselves: one small valid export per format, then
emptied, cut short, replaced by binary data or re-encoded.
"""

from __future__ import annotations

import codecs
import gzip
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from cmosynth.dedup import read_override_files, read_overrides
from cmosynth.errors import InputError
from cmosynth.extract.codebook import load_codebook
from cmosynth.extract.coding import read_coding, read_coding_file
from cmosynth.extract.configurations import read_configuration_file, read_configurations
from cmosynth.imports import convert_files, read_records_file
from cmosynth.screen.decisions import latest_by_reviewer, read_decision_file

TITLE = "Co-production in a café"
AUTHOR = "Müller, Jürgen"

#: One valid export per format: (file name, text, where a cut leaves it unreadable).
EXPORTS = {
    "ris": ("export.ris", f"TY  - JOUR\nTI  - {TITLE}\nAU  - {AUTHOR}\nPY  - 2019\n"
                          "ER  - \n\n"),
    "nbib": ("export.nbib", f"PMID- 12345678\nTI  - {TITLE}\nFAU - {AUTHOR}\n"
                            "DP  - 2019 Mar\n\n"),
    "nbib-txt": ("pubmed.txt", f"PMID- 12345678\nTI  - {TITLE}\nFAU - {AUTHOR}\n"
                               "DP  - 2019 Mar\n\n"),
    "bibtex": ("library.bib", f"@article{{muller2019,\n  title = {{{TITLE}}},\n"
                              f"  author = {{{AUTHOR}}},\n  year = {{2019}}\n}}\n"),
    "csv": ("scopus.csv", f'title,authors,year\n{TITLE},"{AUTHOR}",2019\n'),
    "endnote": ("endnote.xml", '<?xml version="1.0" encoding="UTF-8"?>\n<xml><records>'
                               f"<record><rec-number>1</rec-number><titles><title><style>"
                               f"{TITLE}</style></title></titles><contributors><authors>"
                               f"<author>{AUTHOR}</author></authors></contributors><dates>"
                               "<year>2019</year></dates></record></records></xml>\n"),
    "pubmed": ("pubmed.xml", '<?xml version="1.0" encoding="UTF-8"?>\n<PubmedArticleSet>'
                             "<PubmedArticle><MedlineCitation><PMID>12345678</PMID><Article>"
                             f"<ArticleTitle>{TITLE}</ArticleTitle><AuthorList><Author>"
                             "<LastName>Müller</LastName><ForeName>Jürgen</ForeName></Author>"
                             "</AuthorList></Article></MedlineCitation></PubmedArticle>"
                             "</PubmedArticleSet>\n"),
    "wos": ("savedrecs.ciw", "FN Clarivate Analytics Web of Science\nVR 1.0\nPT J\n"
                             f"AF {AUTHOR}\nTI {TITLE}\nPY 2019\nUT WOS:000000000000001\n"
                             "ER\n\nEF\n"),
    "ovid": ("ovid.cgi", f"<1. >\nDB  - Embase\nUI  - 2001234567\nTI  - {TITLE}\n"
                         "AU  - Müller J.\nYR  - 2019\n\n"),
    "jsonl": ("records.jsonl", f'{{"record_id": "x:1", "title": "{TITLE}", '
                               f'"authors": ["{AUTHOR}"], "year": 2019}}\n'),
}
#: Formats whose end is marked, so that a file cut in half is told apart from a short one.
CUT_IS_AN_ERROR = {"ris", "bibtex", "endnote", "pubmed", "wos", "jsonl"}
XML = {"endnote", "pubmed"}
PNG_HEADER = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"
              b"\x00\x00\x00\x1f\xf3\xffa")


def write(tmp_path: Path, fmt: str, content: bytes | str | None = None) -> Path:
    name, text = EXPORTS[fmt]
    path = tmp_path / name
    data = text.encode("utf-8") if content is None else content
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def read_error(path: Path, **kwargs) -> InputError:
    """The InputError reading `path` gives: one line, naming the file."""
    with pytest.raises(InputError) as caught:
        list(read_records_file(path, **kwargs))
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    return caught.value


def assert_the_record(records: list[dict]) -> None:
    (record,) = records
    assert record["title"].rstrip(".") == TITLE
    assert record["authors"][0].startswith("Müller")


# ----------------------------------------------------------------------------- valid

@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_each_small_export_reads_as_written(tmp_path, fmt):
    assert_the_record(list(read_records_file(write(tmp_path, fmt))))


# ----------------------------------------------------------------------------- empty

@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  \n", codecs.BOM_UTF8 + b"\n"],
                         ids=["zero-bytes", "whitespace", "bom-and-newline"])
@pytest.mark.parametrize("fmt", sorted(set(EXPORTS) - {"jsonl"}))
def test_an_empty_import_holds_no_records_and_says_so(tmp_path, fmt, content):
    error = read_error(write(tmp_path, fmt, content))
    assert "holds no records; check the export" in str(error)


@pytest.mark.parametrize("fmt,content", [
    ("ris", "DB  - Embase\n"), ("bibtex", "@comment{nothing here}\n"),
    ("csv", "title,authors,year\n"), ("endnote", "<xml><records></records></xml>\n"),
    ("pubmed", "<PubmedArticleSet></PubmedArticleSet>\n"), ("wos", "FN Web of Science\nEF\n"),
    ("nbib", "\n\n"), ("ovid", " \n")])
def test_an_import_in_which_no_record_could_be_read_holds_no_records(tmp_path, fmt, content):
    error = read_error(write(tmp_path, fmt, content))
    assert "holds no records" in str(error) or "outside a record" in str(error)


def test_an_empty_record_file_is_zero_records_as_a_search_without_hits_writes_it(tmp_path):
    assert list(read_records_file(write(tmp_path, "jsonl", b""))) == []


# ----------------------------------------------------------------------------- malformed

MALFORMED = {
    "ris": ("TY  - JOUR\nTI  - One\nTY  - JOUR\nTI  - Two\nER  - \n", 3),
    "nbib": ("PMID- 1\nTI  - A title\nnot a tag line\n", 3),
    "nbib-txt": ("PMID- 1\nTI  - A title\nPMID- 2\n", 1),
    "bibtex": ("@article{a,\n title = {One},\n}\n\n@article{b,\n title = {Two\n", 5),
    "csv": ('title,authors\n"Unclosed quote, Doe\nSecond,Roe\n', 2),
    "endnote": ("<xml><records><record><titles><title>One</titles></record></records></xml>",
                1),
    "pubmed": ("<PubmedArticleSet><PubmedArticle><MedlineCitation><Article><ArticleTitle>x"
               "</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>",
               1),
    "wos": ("FN Web of Science\nPT J\nTI One\nPT J\nTI Two\nER\n", 4),
    "ovid": ("TI  - before any record\n<1. >\nTI  - One\n", 1),
    "jsonl": ('{"title": "One"}\n{"title": "Two",\n', 2),
}


@pytest.mark.parametrize("fmt", sorted(MALFORMED))
def test_a_malformed_import_names_the_file_and_line(tmp_path, fmt):
    text, line = MALFORMED[fmt]
    error = read_error(write(tmp_path, fmt, text))
    assert error.line == line, str(error)


@pytest.mark.parametrize("field,value", [
    ("title", ["a", "list"]), ("authors", {"an": "object"}), ("record_id", 12),
    ("abstract_sections", [{"text": 1}]), ("keywords", [["nested"]])])
def test_a_record_line_with_a_field_of_the_wrong_type_is_named(tmp_path, field, value):
    import json

    obj = {"record_id": "x:1", "title": "A title", field: value}
    error = read_error(write(tmp_path, "jsonl", '{"title": "ok"}\n' + json.dumps(obj) + "\n"))
    assert error.line == 2 and field in str(error)


@pytest.mark.parametrize("line", ["[" * 100_000, '{"year": ' + "9" * 5000 + "}",
                                  '{"title": "\\ud800 half a character"}'],
                         ids=["nesting", "huge-number", "lone-surrogate"])
def test_json_a_record_line_cannot_hold_is_named(tmp_path, line):
    error = read_error(write(tmp_path, "jsonl", '{"title": "ok"}\n' + line + "\n"))
    assert error.line == 2


# ----------------------------------------------------------------------------- truncated

@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_an_export_cut_short_is_an_error_where_its_end_is_marked(tmp_path, fmt):
    whole = EXPORTS[fmt][1].encode("utf-8")
    path = write(tmp_path, fmt, whole[:len(whole) * 2 // 3])
    if fmt in CUT_IS_AN_ERROR:
        read_error(path)
    else:  # a shorter record is still a record, or an error naming the file
        try:
            records = list(read_records_file(path))
        except InputError as error:
            assert str(error).startswith(str(path))
        else:
            assert len(records) == 1


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_a_gzip_file_cut_short_is_an_error(tmp_path, fmt):
    packed = gzip.compress(EXPORTS[fmt][1].encode("utf-8"))
    error = read_error(write(tmp_path, fmt, packed[:len(packed) // 2]))
    assert "export" in str(error) or "fetch" in str(error) or "write" in str(error)


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_a_gzipped_export_is_read_whatever_its_name(tmp_path, fmt):
    path = write(tmp_path, fmt, gzip.compress(EXPORTS[fmt][1].encode("utf-8")))
    assert_the_record(list(read_records_file(path)))


# ----------------------------------------------------------------------------- binary

BINARY = {
    "random": bytes(random.Random(7).randrange(256) for _ in range(2000)),
    "png": PNG_HEADER + bytes(range(256)),
    "gzip-header": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
    "zip": b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(100),
    "nul-in-text": b"TY  - JOUR\nTI  - A title\x00\nER  - \n",
}


@pytest.mark.parametrize("kind", sorted(BINARY))
@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_a_binary_file_with_an_export_s_extension_is_refused(tmp_path, fmt, kind):
    read_error(write(tmp_path, fmt, BINARY[kind]))


def test_a_png_is_named_as_one(tmp_path):
    assert "is a PNG image, not a text export" in str(read_error(write(tmp_path, "ris",
                                                                       BINARY["png"])))


def test_a_nul_in_a_text_export_names_its_line(tmp_path):
    error = read_error(write(tmp_path, "ris", BINARY["nul-in-text"]))
    assert error.line == 2 and "binary" in str(error)


# ----------------------------------------------------------------------------- encodings

def latin1(fmt: str) -> bytes:
    text = EXPORTS[fmt][1]
    if fmt in XML:
        text = text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    return text.encode("latin-1")


@pytest.mark.parametrize("fmt", sorted(set(EXPORTS) - {"jsonl"}))
def test_a_latin1_export_is_read_as_documented(tmp_path, fmt):
    assert_the_record(list(read_records_file(write(tmp_path, fmt, latin1(fmt)))))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("fmt", sorted(set(EXPORTS) - {"jsonl"}))
def test_utf16_and_utf32_with_a_byte_order_mark_are_read(tmp_path, fmt, encoding):
    text = EXPORTS[fmt][1]
    if fmt in XML:
        text = text.replace(' encoding="UTF-8"', "")
    data = text.encode(encoding)
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE)):
        data = codecs.BOM_UTF16_BE + data
    path = write(tmp_path, fmt, data)
    if fmt in XML and encoding == "utf-32":  # libxml2 reads no UTF-32; nothing writes it
        assert read_error(path).line == 1
    else:
        assert_the_record(list(read_records_file(path)))


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_utf16_without_a_byte_order_mark_is_refused(tmp_path, fmt):
    read_error(write(tmp_path, fmt, EXPORTS[fmt][1].encode("utf-16-le")))


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_latin1_bytes_after_a_utf8_byte_order_mark_are_refused_naming_the_line(tmp_path, fmt):
    data = codecs.BOM_UTF8 + EXPORTS[fmt][1].encode("latin-1")
    error = read_error(write(tmp_path, fmt, data))
    assert error.line is not None and error.line >= 1


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_utf8_mixed_with_latin1_is_refused_naming_the_line(tmp_path, fmt):
    text = EXPORTS[fmt][1]
    lines = text.split("\n")
    at = next(n for n, line in enumerate(lines) if "Müller" in line or "café" in line)
    head = "\n".join(lines[:at]).encode("utf-8")
    rest = "\n".join(lines[at:])
    data = head + b"\n" + rest.encode("latin-1") if at else rest.encode("latin-1")
    data = data.replace("é".encode("latin-1"), "é".encode("utf-8"), 1)  # one é stays UTF-8
    error = read_error(write(tmp_path, fmt, data))
    assert error.line is not None


# ----------------------------------------------------------------------------- the CLI

def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "cmosynth", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


CLI_CASES = {
    "empty ris": ("ris", b""),
    "whitespace csv": ("csv", b" \n\n"),
    "binary bib": ("bibtex", BINARY["random"]),
    "utf-16 without bom nbib": ("nbib", EXPORTS["nbib"][1].encode("utf-16-le")),
    "cut endnote": ("endnote", EXPORTS["endnote"][1].encode("utf-8")[:150]),
    "cut ris": ("ris", EXPORTS["ris"][1].encode("utf-8")[:40]),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_dedup_of_a_bad_import_exits_2_with_one_line_and_writes_nothing(tmp_path, case):
    fmt, data = CLI_CASES[case]
    bad = write(tmp_path, fmt, data)
    done = run_cli("dedup", bad.name, "-o", "out.jsonl", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmosynth: error: ") and bad.name in lines[0]
    assert not (tmp_path / "out.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir()] == [bad.name], "no temporary file left"


def test_a_bad_import_leaves_an_earlier_output_as_it_was(tmp_path):
    good = write(tmp_path, "ris")
    assert run_cli("dedup", good.name, "-o", "out.jsonl", cwd=tmp_path).returncode == 0
    before = (tmp_path / "out.jsonl").read_bytes()
    (tmp_path / "empty.ris").write_bytes(b"")
    done = run_cli("dedup", good.name, "empty.ris", "-o", "out.jsonl", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("cmosynth: error: empty.ris")
    assert (tmp_path / "out.jsonl").read_bytes() == before


def test_convert_of_an_empty_import_exits_2_and_writes_nothing(tmp_path):
    (tmp_path / "empty.bib").write_bytes(b"\n")
    done = run_cli("convert", "empty.bib", "-o", "out.ris", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if "error" in x]
    assert line.startswith("cmosynth: error: empty.bib") and "holds no records" in line
    assert not (tmp_path / "out.ris").exists()


def test_convert_api_writes_nothing_when_one_input_holds_no_records(tmp_path):
    good = write(tmp_path, "ris")
    (tmp_path / "blank.csv").write_text("title,year\n", "utf-8")
    with pytest.raises(InputError, match="blank.csv: holds no records"):
        convert_files([good, tmp_path / "blank.csv"], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


# ----------------------------------------------------------------------------- reviewer files

def reviewer_file(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


KNOWN = {"pmid:1": "pmid:1", "pmid:2": "pmid:2"}
DECISIONS = "record_id,decision,reason,reviewer\n"
OVERRIDES = "record_id_a,record_id_b,decision,reviewer\n"
CODING = "record_id,sentence,roles,reviewer\n"
CONFIGURATIONS = ("record_id,cmoc,theory_id,context_sentence,mechanism_sentence,"
                  "outcome_sentence,context,mechanism,outcome\n")


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


def reviewer_error(read, path: Path, line: int | None) -> str:
    with pytest.raises(InputError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert caught.value.line == line, message
    return message


def test_a_reviewers_later_decision_for_a_record_replaces_the_earlier_one(tmp_path):
    path = reviewer_file(tmp_path, "me.csv", DECISIONS + "pmid:1,include,,me\n"
                                                          "pmid:2,exclude,off topic,me\n"
                                                          "pmid:1,exclude,on reflection,me\n")
    latest = latest_by_reviewer(read_decision_file(path, KNOWN))["me"]
    assert latest["pmid:1"].decision == "exclude" and latest["pmid:1"].line == 4
    assert latest["pmid:2"].decision == "exclude"


def test_a_reviewers_later_pair_decision_replaces_the_earlier_one(tmp_path):
    path = reviewer_file(tmp_path, "me.csv", OVERRIDES + "pmid:1,pmid:2,duplicates,me\n"
                                                          "pmid:2,pmid:1,not_duplicates,me\n")
    (settled,) = read_override_files([path])
    assert settled.duplicates is False


def test_a_reviewers_later_coding_of_a_sentence_replaces_the_earlier_one(tmp_path):
    path = reviewer_file(tmp_path, "me.csv", CODING + "pmid:1,2,context,me\n"
                                                       "pmid:1,2,?,me\n"
                                                       "pmid:1,2,mechanism;outcome,me\n")
    (rows,) = read_coding([path]).values()
    assert rows["me"].roles == {"mechanism", "outcome"} and rows["me"].line == 4


def test_a_reviewers_later_configuration_with_the_same_label_replaces_the_earlier(tmp_path,
                                                                                   codebook):
    path = reviewer_file(tmp_path, "me.csv", CONFIGURATIONS + "pmid:1,A,PT1,1,2,,,,\n"
                                                               "pmid:1,A,PT2,,2,3,,,\n")
    ((configuration,),) = read_configurations([path], codebook).values()
    assert configuration.theory_id == "PT2" and configuration.line == 3


@pytest.mark.parametrize("rows,line", [
    ("pmid:1,include,,me\npmid:1,perhaps,,me\n", 3),
    ("pmid:9,include,,me\n", 2)])
def test_an_unknown_decision_or_record_is_named_even_beside_a_valid_row(tmp_path, rows, line):
    path = reviewer_file(tmp_path, "me.csv", DECISIONS + rows)
    reviewer_error(lambda p: read_decision_file(p, KNOWN), path, line)


@pytest.mark.parametrize("rows,line,words", [
    ("pmid:1,pmid:2,duplicates,me\npmid:1,pmid:2,same,me\n", 3, "decision 'same'"),
    ("pmid:1,pmid:1,duplicates,me\n", 2, "same record")])
def test_an_unknown_pair_decision_is_named(tmp_path, rows, line, words):
    path = reviewer_file(tmp_path, "me.csv", OVERRIDES + rows)
    assert words in reviewer_error(read_overrides, path, line)


def test_pair_decisions_on_records_not_in_this_run_are_read(tmp_path):
    path = reviewer_file(tmp_path, "me.csv", OVERRIDES + "pmid:7,pmid:8,duplicates,me\n")
    assert [(o.record_id_a, o.record_id_b) for o in read_overrides(path)] == [("pmid:7",
                                                                                "pmid:8")]


@pytest.mark.parametrize("rows,line", [
    ("pmid:1,2,context,me\npmid:1,2,contxt,me\n", 3),
    ("pmid:1,²,context,me\n", 2), ("pmid:1,0,context,me\n", 2), (",3,context,me\n", 2)])
def test_an_unknown_role_or_sentence_number_is_named(tmp_path, rows, line):
    path = reviewer_file(tmp_path, "me.csv", CODING + rows)
    reviewer_error(read_coding_file, path, line)


@pytest.mark.parametrize("rows,line", [
    ("pmid:1,A,PT1,1,2,,,,\npmid:1,A,PT99,1,2,,,,\n", 3), ("pmid:1,A,,²,2,,,,\n", 2),
    ("pmid:1,A,,1,2,,no_such_concept,,\n", 2), (",A,,1,2,,,,\n", 2), ("pmid:1,A,,1,,,,,\n", 2)])
def test_an_unknown_theory_concept_or_sentence_in_a_configuration_is_named(tmp_path, codebook,
                                                                           rows, line):
    path = reviewer_file(tmp_path, "me.csv", CONFIGURATIONS + rows)
    reviewer_error(lambda p: read_configuration_file(p, codebook), path, line)


READERS = {
    "decisions": (DECISIONS, lambda p, codebook: read_decision_file(p, KNOWN)),
    "overrides": (OVERRIDES, lambda p, codebook: read_overrides(p)),
    "coding": (CODING, lambda p, codebook: read_coding_file(p)),
    "configurations": (CONFIGURATIONS, lambda p, codebook: read_configuration_file(p, codebook)),
}


@pytest.mark.parametrize("content,line", [
    (lambda header: header.encode("utf-8") + "pmid:1,café\n".encode("latin-1"), 2),
    (lambda header: header.encode("utf-16"), 1),
    (lambda header: header.encode("utf-8") + b"pmid:1,\x00\n", 2),
    (lambda header: header.encode("utf-8") + b'"' + b"x" * 200_000 + b'"\n', 2),
    (lambda header: PNG_HEADER, None)],
    ids=["latin1", "utf16", "nul", "huge-cell", "png"])
@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_reviewer_file_that_is_not_utf8_csv_is_named_with_its_line(tmp_path, codebook, kind,
                                                                     content, line):
    header, read = READERS[kind]
    path = reviewer_file(tmp_path, f"{kind}.csv", content(header))
    with pytest.raises(InputError) as caught:
        read(path, codebook)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
    if line is not None:
        assert caught.value.line == line, str(caught.value)


@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_folder_named_as_a_reviewer_file_is_an_input_error(tmp_path, codebook, kind):
    _, read = READERS[kind]
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        read(tmp_path / "folder.csv", codebook)
