"""PubMed XML (efetch `retmode=xml`, PubMed's "XML" download), read by the search stage's
streaming parser so that both routes give identical records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cmosynth.imports.registry import Format, first_element_name, register

PUBMED_ROOTS = ("PubmedArticleSet", "PubmedBookArticleSet", "PubmedArticle")


def read_pubmed_xml(path: Path, source: str) -> Iterator[dict]:
    from cmosynth.pubmed.parser import parse_pubmed_xml

    for record in parse_pubmed_xml(path):
        record["source"] = source
        record["source_id"] = record.get("source_id") or record.get("pmid")
        yield record


def _looks_like_pubmed_xml(head: str) -> bool:
    return first_element_name(head) in PUBMED_ROOTS


register(Format("pubmed", (".xml",), _looks_like_pubmed_xml, read=read_pubmed_xml))
