"""Property tests: no input makes a reader, parser or normaliser fail with anything but
the project's documented error, and cheap invariants hold (normalisers idempotent,
sentence spans inside their text and in order).

Examples are derandomised so that CI sees the same inputs on every run; the whole file
runs in well under a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cmosynth.dedup import normalise, read_overrides
from cmosynth.errors import InputError
from cmosynth.extract.codebook import load_codebook
from cmosynth.extract.coding import read_coding_file
from cmosynth.extract.configurations import read_configuration_file
from cmosynth.extract.sentences import record_sentences, split_spans
from cmosynth.imports import read_records_file
from cmosynth.imports.text import clean, find_doi, parse_pmid, parse_year, split_authors
from cmosynth.pubmed.parser import parse_pubmed_xml
from cmosynth.records import make_record_id, new_record, normalise_doi
from cmosynth.screen.decisions import read_decision_file
from cmosynth.screen.topicality import QuerySyntaxError, parse_query, topicality

FAST = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
QUICK = settings(FAST, max_examples=400)

EXTENSIONS = (".ris", ".nbib", ".txt", ".bib", ".csv", ".xml", ".jsonl", ".ciw", ".cgi")

#: Lines that look like each format, so that examples reach past the first check.
FORMAT_LINES = {
    ".ris": ["TY  - JOUR", "ER  - ", "TI  - ", "AU  - ", "PY  - ", "DO  - ", "AN  - ",
             "KW  - ", "SP  - ", "EP  - ", "DB  - ", "M3  - ", "  "],
    ".nbib": ["PMID- ", "TI  - ", "FAU - ", "AU  - ", "DP  - ", "LID - ", "AID - ",
              "MH  - ", "EDAT- ", "LA  - ", "BTI - ", "      ", ""],
    ".txt": ["PMID- ", "TY  - JOUR", "ER  - ", "TI  - ", "<1. >", "DB  - Ovid MEDLINE",
             "UI  - ", "PT J", "ER", ""],
    ".bib": ["@article{", "@book{key,", "title = {", "author = {", " and ", "},", "}",
             "year = ", "doi = ", "@string{", "@comment{", '"', "\\\"o", "{\\'e}", "$"],
    ".csv": ["title,authors,year,doi", "title;authors;year", "Title\tAuthor", '"', ",",
             ";", "pmid,title", "\"a,b\",c"],
    ".xml": ["<xml><records>", "<record>", "</record>", "<titles><title>", "</title>",
             "</titles>", "<contributors><authors><author>", "</author></authors>",
             "</contributors>", "</records></xml>", "<rec-number>", "</rec-number>",
             "<PubmedArticleSet>", "<dates><year>", "</year></dates>", "<style>", "</style>"],
    ".jsonl": ['{"title": ', '{"pmid": ', '"x"}', "1}", '{"record_id": "a", "authors": ',
               "[", "]", "null}", '{"year": ', '{"abstract_sections": [{"text": 1}]}'],
    ".ciw": ["FN Clarivate Analytics Web of Science", "PT J", "AU ", "   ", "TI ", "ER",
             "EF", "PY ", "DI ", "UT WOS:"],
    ".cgi": ["<1. >", "DB  - Embase", "UI  - ", "TI  - ", "AU  - ", "YR  - ", "MH  - ",
             "SO  - ", ""],
}


def flavoured_text(extension: str) -> st.SearchStrategy[str]:
    """Text made of the format's own lines and fragments, with arbitrary text between."""
    piece = st.one_of(st.sampled_from(FORMAT_LINES[extension]),
                      st.text(max_size=20), st.sampled_from(["\n", "\r\n", " ", "\t"]))
    return st.lists(piece, max_size=40).map("".join)


def read_all(path: Path) -> list[dict]:
    """The records of a file, or the InputError; never any other exception."""
    try:
        records = list(read_records_file(path))
    except InputError as error:
        assert "\n" not in str(error), "an error is one line"
        assert str(path) in str(error), "an error names the file"
        return []
    for record in records:
        assert isinstance(record["record_id"], str) and record["record_id"]
    return records


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One folder for the module's files (each example overwrites the one before)."""
    return tmp_path_factory.mktemp("fuzz")


def in_file(folder: Path, name: str, content: bytes | str) -> Path:
    path = folder / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


# ----------------------------------------------------------------------------- importers

@pytest.mark.parametrize("extension", EXTENSIONS)
@FAST
@given(text=st.text(max_size=300))
def test_every_importer_reads_arbitrary_text_or_says_why_not(extension, text, scratch):
    read_all(in_file(scratch, f"export{extension}", text))


@pytest.mark.parametrize("extension", EXTENSIONS)
@FAST
@given(data=st.binary(max_size=300))
def test_every_importer_reads_arbitrary_bytes_or_says_why_not(extension, data, scratch):
    read_all(in_file(scratch, f"export{extension}", data))


@pytest.mark.parametrize("extension", EXTENSIONS)
@settings(FAST, max_examples=200)
@given(data=st.data())
def test_every_importer_reads_text_shaped_like_its_format_or_says_why_not(extension, data,
                                                                         scratch):
    text = data.draw(flavoured_text(extension))
    read_all(in_file(scratch, f"export{extension}", text))


#: Inputs longer runs of the tests above found, kept so that every run tries them.
FOUND = [
    (".nbib", "PMID- \nPMID- "),   # two empty PMID lines: a record without an id
    (".txt", "PMID- \nPMID- "),
    (".nbib", "PMID- ²\n"),        # a PMID that is no number
    (".csv", '"\n"'),             # a header cell holding a line break
    (".jsonl", '{"title": "x", "authors": [["a"]]}\n'),
    (".jsonl", '{"title": "x", "record_id": 5}\n'),
    (".jsonl", '{"title": "\\udc80"}\n'),
    (".jsonl", "[" * 50_000 + "\n"),
]


@pytest.mark.parametrize("extension,text", FOUND)
def test_inputs_fuzzing_found_are_read_or_named(extension, text, scratch):
    read_all(in_file(scratch, f"export{extension}", text))


@FAST
@given(obj=st.dictionaries(
    st.sampled_from(["record_id", "pmid", "doi", "title", "abstract", "authors", "year",
                     "source", "source_id", "mesh", "keywords", "abstract_sections",
                     "volume", "duplicate_of"]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6),
    max_size=6))
def test_jsonl_records_of_any_shape_are_read_or_named(obj, scratch):
    import json

    records = read_all(in_file(scratch, "records.jsonl", json.dumps(obj) + "\n"))
    for record in records:
        json.dumps(record, ensure_ascii=False).encode("utf-8")  # writable again
        assert all(isinstance(a, str) for a in record["authors"] or [])


# ----------------------------------------------------------------------------- PubMed XML

PUBMED_TAGS = ["PubmedArticle", "MedlineCitation", "PMID", "Article", "ArticleTitle",
               "Abstract", "AbstractText", "AuthorList", "Author", "LastName", "ForeName",
               "Journal", "JournalIssue", "PubDate", "Year", "Month", "Day", "MedlineDate",
               "PubmedData", "History", "PubMedPubDate", "ArticleIdList", "ArticleId",
               "Pagination", "MedlinePgn", "Language", "KeywordList", "Keyword",
               "BookDocument", "Book", "BookTitle", "PubmedBookArticle", "ELocationID"]
ATTRIBUTES = ['', ' PubStatus="entrez"', ' IdType="doi"', ' Label="RESULTS"',
              ' ValidYN="N"', ' EIdType="doi"', ' Type="authors"']


def xml_text() -> st.SearchStrategy[str]:
    return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="<&"),
                   max_size=12)


def pubmed_element() -> st.SearchStrategy[str]:
    leaf = xml_text()

    def wrap(children):
        return st.builds(lambda tag, attr, kids: f"<{tag}{attr}>{''.join(kids)}</{tag}>",
                         st.sampled_from(PUBMED_TAGS), st.sampled_from(ATTRIBUTES),
                         st.lists(children, max_size=4))

    return st.recursive(leaf, wrap, max_leaves=25)


@QUICK
@given(body=st.lists(pubmed_element(), max_size=4))
def test_pubmed_parser_reads_any_pubmed_shaped_xml_or_says_why_not(body):
    document = f"<PubmedArticleSet>{''.join(body)}</PubmedArticleSet>".encode("utf-8")
    try:
        records = list(parse_pubmed_xml(document))
    except InputError as error:
        assert "\n" not in str(error)
        return
    for record in records:
        assert record["pmid"].isascii() and record["pmid"].isdigit()
        assert record["entrez_date"] is None or len(record["entrez_date"]) == 10


@FAST
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_pubmed_parser_reads_arbitrary_bytes_or_says_why_not(data):
    try:
        list(parse_pubmed_xml(data))
    except InputError as error:
        assert "\n" not in str(error)


# ----------------------------------------------------------------------------- normalisers

@QUICK
@given(text=st.text(max_size=80))
def test_text_normalisers_never_fail_and_are_idempotent(text):
    for function in (normalise.normalise_text, normalise.normalise_title,
                     normalise.normalise_journal, normalise.normalise_volume):
        once = function(text)
        assert isinstance(once, str) and function(once) == once, function.__name__
    assert clean(clean(text)) == clean(text)
    doi = normalise_doi(text)
    assert doi is None or normalise_doi(doi) == doi
    normalise.normalise_pages(text)
    normalise.first_page(text)
    normalise.normalise_year(text)
    normalise.author_key(text)
    normalise.normalise_authors(text)
    normalise.journals_match(normalise.normalise_journal(text), "journal of health")
    find_doi(text)
    parse_year(text)
    parse_pmid(text)
    split_authors(text)


@QUICK
@example(doi="10.0000/A\u00b4")  # decomposes to "a \u0301": composed again after spaces go
@example(doi="10.1234/a. .")
@given(doi=st.from_regex(r"(https?://(dx\.)?doi\.org/|doi: ?)?10\.[0-9]{4,9}/\S{1,20}[.;, ]*",
                         fullmatch=True))
def test_doi_normalisation_keeps_a_doi_and_is_idempotent(doi):
    once = normalise_doi(doi)
    assert once is None or (once.startswith("10.") and normalise_doi(once) == once)


@QUICK
@given(authors=st.lists(st.text(max_size=20), max_size=5) | st.text(max_size=60),
       year=st.none() | st.integers() | st.text(max_size=8),
       pages=st.none() | st.text(max_size=12))
def test_field_normalisers_accept_what_records_hold(authors, year, pages):
    keys = normalise.normalise_authors(authors)
    assert all(isinstance(k, str) and k for k in keys)
    assert normalise.normalise_pages(normalise.normalise_pages(pages)) == \
        normalise.normalise_pages(pages)
    found = normalise.normalise_year(year)
    assert found is None or 1500 <= found <= 2099


@QUICK
@given(source=st.text(min_size=1, max_size=8), pmid=st.none() | st.text(max_size=10),
       doi=st.none() | st.text(max_size=20), source_id=st.text(min_size=1, max_size=10))
def test_new_records_always_have_a_text_record_id(source, pmid, doi, source_id):
    try:
        record = new_record(source, pmid=pmid, doi=doi, source_id=source_id)
    except ValueError:  # documented: no PMID, DOI or source_id
        assert not source_id.strip()
        return
    assert isinstance(record["record_id"], str)
    assert record["record_id"] == make_record_id(source, record["pmid"], record["doi"],
                                                 source_id)


# ----------------------------------------------------------------------------- sentences

PROSE = st.lists(st.one_of(
    st.sampled_from(["BACKGROUND: ", "RESULTS: ", "Methods", "Conclusions:", "e.g. ", "et al. ",
                     "Dr. ", "p < .05. ", "U.K. ", "0.5. ", ". ", "! ", "? ", "\n", '." ',
                     "ResultsThe ", "health.Methods", "Abstract ", "(", ")", "We ", "The "]),
    st.text(max_size=15)), max_size=30).map("".join)


@QUICK
@given(text=PROSE | st.text(max_size=200), offset=st.integers(0, 50))
def test_sentence_spans_are_inside_the_text_in_order_and_stripped(text, offset):
    spans = split_spans(text, offset)
    previous_end = offset
    for start, end in spans:
        assert previous_end <= start < end <= offset + len(text)
        piece = text[start - offset:end - offset]
        assert piece == piece.strip() and piece
        previous_end = end


@QUICK
@given(title=st.none() | PROSE, abstract=st.none() | PROSE,
       labels=st.lists(st.sampled_from(["RESULTS", "Patient or Public Contribution", "(", "*"]),
                       max_size=3))
def test_record_sentences_are_verbatim_spans_of_title_and_abstract(title, abstract, labels):
    record = new_record("fuzz", source_id="1", title=title, abstract=abstract,
                        abstract_sections=[{"label": label, "nlm_category": "RESULTS",
                                            "text": ""} for label in labels])
    for sentence in record_sentences(record):
        assert sentence.source_text[sentence.start:sentence.end] == sentence.text
        assert sentence.text.strip() == sentence.text and sentence.text


# ----------------------------------------------------------------------------- queries

QUERY = st.lists(st.one_of(
    st.sampled_from(["(", ")", " AND ", " OR ", " NOT ", '"co-production"', "[tiab]", "[mh]",
                     "care*", '"', "[", "]", " ", "integrat*[tiab]", "health[mesh]"]),
    st.text(max_size=8)), max_size=30).map("".join)


@QUICK
@given(query=QUERY | st.text(max_size=100), title=st.text(max_size=40))
def test_query_parsing_fails_only_with_query_syntax_error(query, title):
    try:
        tree = parse_query(query)
    except QuerySyntaxError as error:
        assert "\n" not in str(error)
        return
    topicality(tree, {"title": title, "abstract": title, "mesh": [title], "keywords": []})


def test_deeply_nested_and_very_long_queries_are_read_or_refused_in_one_line():
    long_query = " OR ".join(f"term{n}[tiab]" for n in range(5000))
    tree = parse_query(long_query)
    assert topicality(tree, {"title": "term4999", "abstract": "x"}).verdict == "on topic"
    with pytest.raises(QuerySyntaxError):
        parse_query("(" * 5000 + "x" + ")" * 5000)


# ----------------------------------------------------------------------------- reviewer files

CSV_PIECES = st.one_of(st.sampled_from([",", "\n", '"', "\r\n", "include", "exclude", "maybe",
                                        "pmid:1", "pmid:2", "duplicates", "not_duplicates",
                                        "context", "mechanism;outcome", "?", "none", "1", "0",
                                        "-1", "²", "c1", "t1", " ", ";"]),
                       st.text(max_size=6))

HEADERS = {
    "decisions": "record_id,decision,reason,reviewer\n",
    "overrides": "record_id_a,record_id_b,decision,reviewer,reason\n",
    "coding": "record_id,sentence,roles,reviewer,text,concepts\n",
    "configurations": "record_id,cmoc,theory_id,context_sentence,mechanism_sentence,"
                      "outcome_sentence,context,mechanism,outcome,summary\n",
}


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


def read_reviewer_file(kind: str, path: Path, codebook) -> None:
    try:
        if kind == "decisions":
            read_decision_file(path, {"pmid:1": "pmid:1", "pmid:2": "pmid:1"})
        elif kind == "overrides":
            read_overrides(path)
        elif kind == "coding":
            read_coding_file(path)
        else:
            read_configuration_file(path, codebook)
    except InputError as error:
        assert "\n" not in str(error) and str(path) in str(error)


@pytest.mark.parametrize("kind", sorted(HEADERS))
@settings(FAST, max_examples=100)
@given(rows=st.lists(CSV_PIECES, max_size=40).map("".join), data=st.binary(max_size=80),
       headed=st.booleans())
def test_reviewer_files_are_read_or_named_with_their_line(kind, rows, data, headed, codebook,
                                                         scratch):
    text = (HEADERS[kind] if headed else "") + rows
    read_reviewer_file(kind, in_file(scratch, f"{kind}.csv", text), codebook)
    read_reviewer_file(kind, in_file(scratch, f"{kind}.csv", data), codebook)
