"""Suggestions of CMOCs from a large language model (optional, off by default).

Any OpenAI-compatible chat endpoint will do: `CMOSYNTH_LLM_URL` (base URL, e.g.
http://127.0.0.1:8000/v1), `CMOSYNTH_LLM_MODEL`, and `CMOSYNTH_LLM_API_KEY` (sent as a
bearer token, never logged). The model sees the codebook and the record's text and
answers in JSON. Its output is a suggestion for a reviewer, marked so in `method`: unknown
concept ids are dropped, a quote is kept only if it is a verbatim substring of the
record's title, abstract or full text, and a configuration needs two elements left.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re

import requests

from cmosynth.errors import CmosynthError, ConfigError
from cmosynth.extract.codebook import ROLES, Codebook
from cmosynth.extract.link import best_theory

log = logging.getLogger("cmosynth.extract.llm")

PROMPT = """You are a realist reviewer extracting context-mechanism-outcome configurations \
(CMOCs) from a research record. Context: pre-existing conditions that shape whether \
mechanisms fire. Mechanism: resources a programme offers and how people reason and respond \
(Dalkin et al. 2015). Outcome: intended or unintended results.

Code with these concept ids only:
{concepts}

Answer with JSON only: {{"cmocs": [{{"context": [ids], "mechanism": [ids], "outcome": [ids], \
"context_quote": "...", "mechanism_quote": "...", "outcome_quote": "..."}}]}}. Each quote \
must be copied character for character from the record text. Give at least two of the three \
elements per CMOC; give no CMOC rather than guess."""
#: A model's answer carries no calibrated confidence: suggestions sit at the midpoint
#: until a reviewer confirms them.
SUGGESTION_CONFIDENCE = 0.5


class LlmError(CmosynthError):
    """The chat endpoint could not be reached or did not answer usefully."""


def _chat_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


class LlmSuggester:
    """Asks the chat endpoint for CMOCs of each record and keeps what can be verified."""

    def __init__(self, codebook: Codebook, url: str, model: str, api_key: str | None = None,
                 timeout: float = 120.0):
        self.codebook = codebook
        self.url = _chat_url(url)
        self.model = model
        self.timeout = timeout
        self.method = f"llm({model})-suggestion"
        self.prompt = PROMPT.format(concepts="\n".join(
            f"- {c.id} ({c.role}): {c.label}" for c in codebook.concepts))
        self._session = requests.Session()
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"
        digest = hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()[:12]
        log.info("LLM suggestions from model %s at %s (prompt sha256 %s):\n%s",
                 model, self.url, digest, self.prompt)

    @classmethod
    def from_environment(cls, codebook: Codebook) -> "LlmSuggester":
        url = os.environ.get("CMOSYNTH_LLM_URL")
        model = os.environ.get("CMOSYNTH_LLM_MODEL")
        if not url or not model:
            raise ConfigError("environment", "CMOSYNTH_LLM_URL" if not url else "CMOSYNTH_LLM_MODEL",
                              "extract.llm is on but the endpoint is not set; set "
                              "CMOSYNTH_LLM_URL and CMOSYNTH_LLM_MODEL, or turn extract.llm off")
        return cls(codebook, url, model, os.environ.get("CMOSYNTH_LLM_API_KEY") or None)

    def ask(self, text: str) -> str:
        """The model's answer (message content) for one record's text."""
        body = {"model": self.model, "temperature": 0, "seed": 0,
                "messages": [{"role": "system", "content": self.prompt},
                             {"role": "user", "content": text}]}
        try:
            response = self._session.post(self.url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise LlmError(f"{self.url}: no response ({type(exc).__name__}); check "
                           "CMOSYNTH_LLM_URL") from None
        if response.status_code != 200:
            raise LlmError(f"{self.url}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LlmError(f"{self.url}: not an OpenAI-style chat completion") from None

    def suggest(self, record: dict, texts: list[str]) -> list[dict]:
        """Verified CMO table rows suggested for one record (cmoc_id numbered by the caller)."""
        answer = self.ask("\n\n".join(texts))
        rows = []
        for raw in _parse_cmocs(answer):
            row = self._verified_row(record, raw, texts)
            if row is not None:
                rows.append(row)
        return rows

    def _verified_row(self, record: dict, raw: dict, texts: list[str]) -> dict | None:
        known = {c.id: c.role for c in self.codebook.concepts}
        elements = {}
        for role in ROLES:
            ids = raw.get(role) or []
            ids = [ids] if isinstance(ids, str) else ids
            concepts = tuple(dict.fromkeys(i for i in ids if known.get(i) == role))
            quote = raw.get(f"{role}_quote") or ""
            if concepts and quote and any(quote in t for t in texts):
                elements[role] = (concepts, quote)
            elif concepts or quote:
                log.info("%s: dropped a suggested %s (unknown concept or quote not verbatim)",
                         record["record_id"], role)
        if len(elements) < 2:
            return None
        theory = best_theory(frozenset(c for ids, _ in elements.values() for c in ids),
                             self.codebook.theories)
        row = {"cmoc_id": "", "record_id": record["record_id"], "pmid": record.get("pmid") or "",
               "doi": record.get("doi") or "", "theory_id": theory.id if theory else ""}
        row.update({role: ";".join(elements[role][0]) if role in elements else "" for role in ROLES})
        row.update({f"{role}_quote": elements[role][1] if role in elements else "" for role in ROLES})
        row.update(section=_section_of(record, [q for _, q in elements.values()]),
                   confidence=f"{SUGGESTION_CONFIDENCE:.3f}", method=self.method)
        return row


def _section_of(record: dict, quotes: list[str]) -> str:
    if all(q in (record.get("title") or "") for q in quotes):
        return "title"
    if all(q in (record.get("abstract") or "") for q in quotes):
        return "abstract"
    return "fulltext"


def _parse_cmocs(answer: str) -> list[dict]:
    """The `cmocs` list of the model's JSON answer (code fences tolerated), or []."""
    match = re.search(r"\{.*\}", answer or "", re.DOTALL)
    try:
        data = json.loads(match.group()) if match else {}
    except json.JSONDecodeError:
        log.warning("LLM answer was not JSON; no suggestions kept")
        return []
    cmocs = data.get("cmocs") if isinstance(data, dict) else None
    return [c for c in cmocs or [] if isinstance(c, dict)]
