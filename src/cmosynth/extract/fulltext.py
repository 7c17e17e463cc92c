"""Open-access full texts from PubMed Central: fetch (efetch db=pmc) and read JATS.

Each raw response is kept as `<output_dir>/PMC<id>.xml`, and ones already there are
skipped, so a rerun sends nothing; `manifest.json` lists what the folder holds. The JATS reader yields the paragraphs of the results,
discussion and conclusions sections, where realist reviews find most configurations; a
body without any sections (short reports, corrections) is read whole as `body`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from cmosynth.console import track
from cmosynth.errors import InputError
from cmosynth.files import write_bytes_atomic, write_json
from cmosynth.records import read_records

log = logging.getLogger("cmosynth.extract.fulltext")

MANIFEST = "manifest.json"
#: Section kinds read for extraction, found from sec-type or the section title.
SECTION_KINDS = ("results", "discussion", "conclusions")
_KIND_WORDS = {
    "results": re.compile(r"\b(?:results?|findings?)\b", re.IGNORECASE),
    "discussion": re.compile(r"\bdiscussion\b", re.IGNORECASE),
    "conclusions": re.compile(r"\bconclu|\bimplications?\b|\blessons?\b", re.IGNORECASE),
}


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of a full text: its section kind and title, and its plain text."""

    kind: str        # results, discussion, conclusions or body
    title: str       # the section title as printed (may be empty)
    text: str


def pmc_number(pmcid: str | None) -> str | None:
    """Digits of a PMC id ("PMC7734957" or "7734957"), or None."""
    match = re.fullmatch(r"\s*(?:PMC)?(\d+)\s*", str(pmcid or ""), re.IGNORECASE)
    return match.group(1) if match else None


def full_text_path(output_dir: str | Path, pmcid: str | None) -> Path | None:
    number = pmc_number(pmcid)
    return Path(output_dir) / f"PMC{number}.xml" if number else None


def not_retrieved_reason(data: bytes) -> str | None:
    """Why a stored PMC answer holds no full text (None: it holds one). PMC answers an id
    it cannot serve with an empty set, an <error>, or an article without a <body> (front
    matter only, when the publisher does not allow the XML); none of these is a report
    retrieved, and PRISMA must count it as not retrieved."""
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return "PMC's answer is not valid XML"
    error = root if root.tag == "error" else root.find(".//error")
    if error is not None:
        return f"PMC answered with an error: {_text(error) or 'no message'}"
    articles = [root] if root.tag == "article" else root.findall(".//article")
    if not articles:
        return "PMC sent no article (not in the open-access subset, or withdrawn)"
    if not any(body is not None and _text(body) for a in articles for body in [a.find("body")]):
        return "PMC sent the article without its body (the publisher does not allow the XML)"
    return None


def fetch_full_texts(records_path: str | Path, output_dir: str | Path, client=None) -> dict:
    """Fetch the JATS full text of every record with a PMC id not yet in `output_dir`.

    Returns counts: records with a PMC id, fetched now, already present, and of those
    the full texts retrieved and the answers that held none (by reason)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    wanted = sorted({pmc_number(r.get("pmcid")) for r in read_records(records_path)} - {None},
                    key=int)
    missing = [n for n in wanted if not (output_dir / f"PMC{n}.xml").exists()]
    counts = {"with_pmcid": len(wanted), "fetched": 0, "present": len(wanted) - len(missing)}
    if missing:
        from cmosynth.pubmed.client import EutilsClient

        owned = client is None
        client = client or EutilsClient()
        try:
            for number in track(missing, "fetching PMC full texts", total=len(missing),
                                unit="articles"):
                write_bytes_atomic(output_dir / f"PMC{number}.xml",
                                   client.efetch(db="pmc", ids=[number]))
                counts["fetched"] += 1
        finally:
            if owned:
                client.close()
    manifest = write_manifest(output_dir, wanted)
    counts["retrieved"] = manifest["retrieved"]
    counts["not_retrieved"] = manifest["not_retrieved"]
    log.info("full texts: %(with_pmcid)d records with a PMC id (%(fetched)d asked for now, "
             "%(present)d already stored): %(retrieved)d retrieved, %(not_retrieved)d not",
             counts)
    for reason, n in sorted(manifest["not_retrieved_by_reason"].items()):
        log.warning("%d full text(s) not retrieved: %s", n, reason)
    return counts


def write_manifest(output_dir: Path, numbers: list[str]) -> dict:
    """`manifest.json`: each wanted article, whether its full text was retrieved (and if
    not, why), and how many paragraphs were read from it; with the totals. Deterministic,
    so a rerun rewrites it byte for byte; the workflow tracks this file rather than the
    folder, so that stored full texts survive reruns. A stored answer that holds no full
    text is kept (a rerun does not ask again; delete it to ask PMC again)."""
    articles, reasons = [], {}
    for number in numbers:
        path = output_dir / f"PMC{number}.xml"
        reason = not_retrieved_reason(path.read_bytes())
        paragraphs = [] if reason else read_full_text(path)
        articles.append({"pmcid": f"PMC{number}", "file": path.name, "retrieved": not reason,
                         "reason": reason or "", "paragraphs": len(paragraphs),
                         "sections": sorted({p.kind for p in paragraphs})})
        if reason:
            reasons[reason] = reasons.get(reason, 0) + 1
    manifest = {"sought": len(articles),
                "retrieved": sum(a["retrieved"] for a in articles),
                "not_retrieved": len(articles) - sum(a["retrieved"] for a in articles),
                "not_retrieved_by_reason": dict(sorted(reasons.items())),
                "articles": articles}
    write_json(output_dir / MANIFEST, manifest)
    return manifest


def _text(element) -> str:
    """Plain text of an element, whitespace collapsed (inline tags kept as text)."""
    return re.sub(r"\s+", " ", "".join(element.itertext())).strip()


def section_kind(sec) -> str | None:
    """results / discussion / conclusions for a JATS <sec>, from sec-type or its title."""
    declared = (sec.get("sec-type") or "").lower()
    title = _text(sec.find("title")) if sec.find("title") is not None else ""
    for kind in SECTION_KINDS:
        if kind.rstrip("s") in declared or _KIND_WORDS[kind].search(title):
            return kind
    return None


def parse_jats(data: bytes, source: str = "JATS") -> Iterator[Paragraph]:
    """Paragraphs of the results, discussion and conclusions sections of a JATS article
    (or of a pmc-articleset holding one), in document order."""
    try:
        # No DTD, entity expansion or network (a crafted file can neither read a local
        # file into a quote nor blow up); no huge_tree: an article is far below libxml2's
        # per-node limits, which are part of its protection against abuse.
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False,
                                                              no_network=True, load_dtd=False))
    except etree.XMLSyntaxError as exc:
        raise InputError(source, f"not valid JATS XML ({exc}); delete the file to fetch it again") from None
    for body in root.iter("body"):
        sections = body.findall("sec")
        if not sections:
            for p in body.iter("p"):
                if _text(p):
                    yield Paragraph("body", "", _text(p))
            continue
        yield from _section_paragraphs(sections)


def _section_paragraphs(sections, inherited: str | None = None) -> Iterator[Paragraph]:
    for sec in sections:
        kind = section_kind(sec) or inherited
        title = _text(sec.find("title")) if sec.find("title") is not None else ""
        if kind:
            for p in sec.findall("p"):
                if _text(p):
                    yield Paragraph(kind, title, _text(p))
        yield from _section_paragraphs(sec.findall("sec"), kind)


def read_full_text(path: str | Path) -> list[Paragraph]:
    """Paragraphs of a stored full text (empty if PMC sent no article, e.g. not open access)."""
    path = Path(path)
    return list(parse_jats(path.read_bytes(), str(path)))
