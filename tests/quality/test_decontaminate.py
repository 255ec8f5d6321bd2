"""Decontamination: planted benchmark questions are found (exact, paraphrased, short, in part), clean
records are not (exam text that shares only stock phrases with a question; real fixture data against
real MMLU questions), and a build reports what it removed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meadow.build import build
from meadow.cli import app
from meadow.errors import MeadowError
from meadow.quality.decontaminate import Benchmark, DeconCounts, Decontaminator
from meadow.quality.ngram_index import Index
from meadow.records import Record
from meadow.schemas.outputs import CONTAMINATION_NAME, DROPPED_NAME, JSON_NAME
from meadow.schemas.quality import DecontaminateSettings
from meadow.schemas.recipe import load_recipe
from meadow.text import normalize

LONG = (
    "A 34-year-old woman comes to the emergency department because of sudden palpitations and "
    "lightheadedness that began while she was climbing stairs an hour ago. Her pulse is 180/min and "
    "regular, and an ECG shows a narrow-complex tachycardia without visible P waves. Carotid sinus "
    "massage does not slow the rate. Which of the following is the most appropriate next step in "
    "management?"
)
LONG_OPTIONS = ["Adenosine", "Amiodarone", "Synchronized cardioversion", "Verapamil", "Digoxin"]
SHORT = "Which cranial nerve innervates the lateral rectus muscle of the eye?"  # 11 words
SHORT_OPTIONS = ["Oculomotor", "Trochlear", "Abducens", "Optic"]
TINY = "What is the normal arterial pH?"  # 5 words: exact matches only
TINY_OPTIONS = ["7.25", "7.40", "7.55", "7.70"]


def rec(instruction: str, input_: str = "", output: str = "An answer.", id_: str = "t:1") -> Record:
    return Record(instruction=instruction, input=input_, output=output, source="t", id=id_)


def bench(name: str = "b", questions=None) -> Benchmark:
    questions = questions or [
        ("q-long", LONG, LONG_OPTIONS),
        ("q-short", SHORT, SHORT_OPTIONS),
        ("q-tiny", TINY, TINY_OPTIONS),
    ]
    return Benchmark(name, "medqa", [], questions)


@pytest.fixture(scope="module")
def index() -> Index:
    return Index(DecontaminateSettings(), [bench()])


# --------------------------------------------------------------------------- planted questions


def test_exact_question_is_found_whatever_case_and_punctuation(index):
    hit = index.match(rec(LONG.upper().replace(",", " ,").replace("?", "")))
    assert hit is not None and (hit.benchmark, hit.item_id, hit.match) == ("b", "q-long", "exact")
    hit = index.match(rec("Answer the question.", f"{TINY}"))  # the input alone equals the question
    assert hit is not None and (hit.item_id, hit.match) == ("q-tiny", "exact")


@pytest.mark.parametrize(
    ("paraphrase", "match"),
    [
        (LONG.replace("sudden palpitations", "abrupt palpitations"), "ngram"),  # a word changed
        (LONG.replace("hour ago", "hour or so ago"), "ngram"),  # a word added
        (LONG.replace("34-year-old", "34 year old").replace(".", ";").upper(), "exact"),  # case, punctuation
        ("Hi doctor. " + LONG.replace("regular, and", "regular and").lower() + " Thanks!", "ngram"),
    ],
)
def test_a_slightly_paraphrased_long_question_is_found(index, paraphrase, match):
    hit = index.match(rec("Answer this question.", paraphrase, "Adenosine is the drug of choice."))
    assert hit is not None and (hit.item_id, hit.match) == ("q-long", match)
    if match == "ngram":
        # a changed word leaves the 12 words before it outside every shared 13-gram; an added word,
        # or changed punctuation, leaves none out
        assert hit.coverage == (0.7714 if "abrupt" in paraphrase else 1.0)
        question = normalize(f"{LONG} {' '.join(LONG_OPTIONS)}")
        assert all(len(s.text.split()) >= 13 and s.text in question for s in hit.spans)


def test_a_long_question_rewritten_throughout_is_not_found(index):
    # every 13-word stretch is changed: no longer the benchmark's wording (with 13-grams; the
    # bench's one_in_ten variant: bench/RESULTS.md)
    words = LONG.split()
    rewritten = " ".join(w if i % 10 else "very" for i, w in enumerate(words))
    assert index.match(rec("Question", rewritten)) is None


def test_a_short_question_is_found_by_the_short_ngram(index):
    # in another framing (MedQA's dict of options), with words added before and after the question
    options = "{'A': 'Oculomotor', 'B': 'Trochlear', 'C': 'Abducens', 'D': 'Optic'}"
    record = rec(
        "Please answer with one of the option in the bracket", f"Q:Tell me: {SHORT[:-1]} please? \n{options},"
    )
    hit = index.match(record)
    assert hit is not None and (hit.item_id, hit.match, hit.coverage) == ("q-short", "ngram", 1.0)
    assert [s.text for s in hit.spans] == [normalize(SHORT)]  # "please" comes before the options
    # a question of fewer than 8 words: found with its options (8 words and more), or as a whole field
    hit = index.match(rec("Quick quiz", f"{TINY} A: 7.25 B: 7.40 C: 7.55 D: 7.70"))
    assert hit is not None and (hit.item_id, hit.match) == ("q-tiny", "ngram")
    assert [(s.start, s.end, s.text) for s in hit.spans] == [
        (0, 14, "what is the normal arterial ph 7 25 7 40 7 55 7 70")
    ]
    assert index.match(rec("Quick quiz", f"Tell me: {TINY} Thanks.")) is None


@pytest.mark.parametrize(
    "text",
    [
        "Which cranial nerve is most often injured in a fall?",  # shares 3 words in a row with SHORT
        "The lateral rectus muscle abducts the eye; it is tested by asking the patient to look sideways.",
        "My pulse is 180/min and regular, and I feel lightheaded. What should I do?",  # < 13 words shared
        "Adenosine Amiodarone Synchronized cardioversion Verapamil Digoxin",  # the options alone
    ],
)
def test_clean_records_are_not_found(index, text):
    assert index.match(rec(text, "", "See a doctor.")) is None


def test_template_ngrams_shared_by_many_questions_are_not_evidence():
    template = (
        "Which of the following is the most likely cause of this patient's current symptoms and findings?"
    )
    findings = "fever cough rash headache fatigue jaundice edema dyspnea syncope ataxia pruritus hematuria"
    questions = [
        (f"q{i}", f"A {20 + i}-year-old man has {finding}. {template}", ["A", "B", "C", "D"])
        for i, finding in enumerate(findings.split())
    ]
    short = (
        "s1",
        "Which of the following is the most likely cause?",
        ["Virus", "Bacterium", "Fungus", "Prion"],
    )
    assert len(normalize(template).split()) == 16
    index = Index(DecontaminateSettings(), [bench(questions=[*questions, short])])
    assert index.skipped_common > 0
    # the template, in an unrelated record: not a hit (its n-grams are in more than 10 questions)
    assert index.match(rec(f"My son is coughing. {template}", "", "Probably a virus.")) is None
    assert index.match(rec("Which of the following is the most likely cause here, doctor?")) is None
    # a real question is still found through its own wording
    hit = index.match(rec(f"A 25-year-old man has jaundice. {template}"))
    assert hit is not None and hit.item_id == "q5"
    with_few = Index(DecontaminateSettings(common=20), [bench(questions=questions)])
    assert with_few.skipped_common == 0


# --------------------------------------------------------------------------- exam text that is not a leak

# Each of these records shares a stretch of 8 or 13 words with a benchmark question, and the old rule
# (any shared n-gram is a hit) dropped it. They share stock text only: coverage says so.

VIGNETTE = (
    "A 45-year-old man comes to the emergency department because of a 2-day history of fever and "
    "productive cough with rust-colored sputum. He has smoked one pack of cigarettes daily for 20 years. "
    "Her temperature is 39.2°C (102.6°F), pulse is 110/min, respirations are 24/min, and blood pressure "
    "is 120/80 mm Hg. Crackles are heard over the right lower lobe, and a chest x-ray shows lobar "
    "consolidation. A Gram stain of the sputum shows lancet-shaped gram-positive diplococci in pairs."
)
DIAGNOSIS = "Which of the following is the most likely diagnosis?"
NEXT_STEP = "Which of the following is the most appropriate next step in management?"
GAIT = "Which of the following is true about the assessment of gait?"
GAIT_OPTIONS = [
    "A stamping gait is caused by a cerebellar lesion",
    "An antalgic gait is caused by pain",
    "A waddling gait is seen in hip girdle weakness",
    "An apraxic gait is due to a frontal lobe lesion",
]
ROMAN = "Which of the following cells are phagocytic? I. Neutrophils II. Macrophages III. Platelets"
ROMAN_OPTIONS = ["I only", "II only", "I and II only", "I, II, and III"]


def exam_index() -> Index:
    return Index(
        DecontaminateSettings(),
        [
            bench(
                "exam",
                [
                    (
                        "v-dx",
                        f"{VIGNETTE} {DIAGNOSIS}",
                        ["Legionella", "Pneumococcal pneumonia", "Tuberculosis"],
                    ),
                    ("v-next", f"{VIGNETTE} {NEXT_STEP}", ["Oral amoxicillin", "Bronchoscopy", "CT scan"]),
                    ("gait", GAIT, GAIT_OPTIONS),
                    ("roman", ROMAN, ROMAN_OPTIONS),
                    (
                        "stock",
                        "Which of the following is incorrect?",
                        ["Aspirin is an NSAID", "Heparin is a vitamin"],
                    ),
                ],
            )
        ],
    )


@pytest.mark.parametrize(
    "text",
    [
        # a stock stem (the 8-gram "which of the following is true about the" of a short question)
        "Which of the following is true about the management of acute asthma in children?",
        # a question that is nothing but a stock stem, as a whole field
        "Which of the following is incorrect?",
        # a roman-numeral option list, once the single letters are gone "only ii only and ii only ..."
        "Which bacteria are gram-positive? I. Staphylococci II. Streptococci III. E. coli\n"
        "A: I only B: II only C: I and II only D: I, II, and III",
        # a vignette opening (17 words in a row), a vital signs line of the same template and a stock
        # closing question (13 words in a row with the end of the vital signs), another patient between
        "A 45-year-old man comes to the emergency department because of a 2-day history of fever and a "
        "painful swollen right knee. He has no history of trauma. His temperature is 38.4 °C (101.1 °F), "
        "pulse is 96/min, respirations are 18/min, and blood pressure is 120/80 mm Hg. Crackles are heard "
        "over the right lower lobe. Which of the following is the most likely diagnosis?",
    ],
)
def test_exam_text_sharing_only_stock_phrases_is_not_a_leak(text):
    index = exam_index()
    assert index.find(rec("Answer the following multiple choice question.", text, "B")) is None


def test_a_question_sharing_its_stem_with_another_is_credited_to_the_one_it_holds_most():
    # both questions' stems are in the record; only v-next's closing question and options are, so the
    # record is credited to it (the old rule credited the first question in file order, v-dx)
    index = exam_index()
    options = "A: Oral amoxicillin\nB: Bronchoscopy\nC: CT scan"
    found = index.find(
        rec("Answer the following multiple choice question.", f"{VIGNETTE} {NEXT_STEP}\n{options}")
    )
    assert found is not None and found.hit.item_id == "v-next" and found.hit.coverage == 1.0
    assert {index.items[i].id for i in found.items} == {"v-dx", "v-next"}  # it holds both stems
    # the vignette alone: both held in full, credited to the first
    assert index.match(rec("Case", VIGNETTE)).item_id == "v-dx"


def test_only_the_questions_a_record_holds_are_counted_found():
    # the record holds "gait" and shares a vignette opening with v-dx and v-next: one question
    # found (the old rule counted every question sharing an n-gram: the manifest's `hits`)
    decon = Decontaminator(DecontaminateSettings(), [exam_index().benchmarks["exam"]])
    opening = "A 45-year-old man comes to the emergency department because of a 2-day history of fever and"
    record = rec(f"{opening} dizziness.", f"{GAIT}\n" + "\n".join(GAIT_OPTIONS))
    hit = decon.check(record)
    assert hit is not None and hit.item_id == "gait"
    assert decon.counts.found == {"exam": {2}} and decon.counts.records == {"exam": 1}


LEAKS = {
    "verbatim": lambda q, o: ("Answer the following multiple choice question.", f"{q}\n" + lettered(o)),
    "options_reformatted": lambda q, o: (
        "Pick one.",
        f"Q: {q} " + " ".join(f"({chr(97 + i)}) {x}" for i, x in enumerate(o)),
    ),
    "case_punctuation": lambda q, o: ("ANSWER", re.sub(r"[,.?:()-]", " ", f"{q} {' '.join(o)}").upper()),
    "inside_text": lambda q, o: (
        "Summarise the notes.",
        f"The patient was seen on Monday and felt better after rest. Quiz: {q} {' / '.join(o)} "
        "Follow-up in two weeks with blood tests.",
    ),
    "last_60pct": lambda q, o: ("Continue.", " ".join(q.split()[-round(0.6 * len(q.split())) :])),
}


def lettered(options: list[str]) -> str:
    return "\n".join(f"{chr(65 + i)}: {x}" for i, x in enumerate(options))


@pytest.mark.parametrize(
    ("item_id", "variant"),
    [("v-dx", v) for v in LEAKS] + [("gait", v) for v in LEAKS if v != "last_60pct"],
)
def test_a_planted_question_is_found_in_every_variant(item_id, variant):
    index = exam_index()
    item = next(q for q in index.benchmarks["exam"].questions if q[0] == item_id)
    instruction, text = LEAKS[variant](item[1], item[2])
    hit = index.match(rec(instruction, text, "Not the answer."))
    assert hit is not None and hit.item_id == item_id, variant
    assert hit.coverage >= (0.4 if variant == "last_60pct" else 1.0)


def test_a_short_question_verbatim_and_a_number_however_its_unit_is_spaced():
    index = exam_index()
    hit = index.match(rec("Answer this question.", GAIT, "An antalgic gait is caused by pain"))
    assert hit is not None and (hit.item_id, hit.match) == ("gait", "exact")
    spaced = VIGNETTE.replace("39.2°C (102.6°F)", "39.2 C (102.6 F)").replace("2-day", "2 day")
    hit = index.match(rec("Case", f"{spaced} {DIAGNOSIS}"))
    assert hit is not None and (hit.item_id, hit.match, hit.coverage) == ("v-dx", "exact", 1.0)


def test_the_first_benchmark_is_reported_and_every_question_counted():
    a = bench("a", [("a1", LONG, LONG_OPTIONS)])
    b = bench("b", [("b1", LONG, LONG_OPTIONS)])
    index = Index(DecontaminateSettings(), [a, b])
    record = rec("Q", LONG)
    assert index.match(record).benchmark == "a"
    assert {index.items[i].id for i in index.find(record).items} == {"a1", "b1"}


def test_counts_of_shards_add_up_and_a_worker_starts_from_zero():
    a = DeconCounts(Counter({"a": 2}), {"a": {1, 3}, "b": set()})
    b = DeconCounts(Counter({"a": 1, "b": 1}), {"a": {3, 4}, "b": {7}})
    total = a + b
    assert (total.records, total.found) == ({"a": 3, "b": 1}, {"a": {1, 3, 4}, "b": {7}})
    assert a.found == {"a": {1, 3}, "b": set()}  # the operands are left as they were
    assert DeconCounts.from_json(json.loads(json.dumps(total.to_json()))) == total  # a shard's .done

    decon = Decontaminator(DecontaminateSettings(), [bench("a", [("a1", LONG, LONG_OPTIONS)])])
    assert decon.check(rec("Q", LONG)) is not None
    worker = decon.fresh()
    assert worker.index is decon.index and worker.counts == DeconCounts.empty(["a"])
    assert decon.counts == DeconCounts(Counter({"a": 1}), {"a": {0}})
    decon.counts += decon.counts
    assert decon.counts.records == {"a": 2} and decon.counts.found == {"a": {0}}


def test_results_do_not_depend_on_the_hash_seed(tmp_path):
    script = f"""
import json, sys
from meadow.quality.decontaminate import Benchmark, Index
from meadow.schemas.quality import DecontaminateSettings
from meadow.records import Record
qs = [(f"q{{i}}", f"Question {{i}} about the {{w}} of the heart and the lungs in old age and youth alike",
       ["yes", "no"]) for i, w in enumerate(["size", "shape", "weight", "rhythm", "valves"] * 40)]
index = Index(DecontaminateSettings(), [Benchmark("b", "mmlu", [], qs)])
texts = [f"the {{w}} of the heart and the lungs in old age and youth alike" for w in ["size", "weight"]]
texts += [{LONG!r}, "Question 8 about the rhythm of the heart and the lungs in old age and youth alike"]
out = []
for t in texts:
    hit = index.match(Record(instruction=t, output="x", source="s", id="s:1"))
    out.append(None if hit is None else [hit.item_id, hit.match, hit.coverage, [s.text for s in hit.spans]])
print(json.dumps([out, index.skipped_common]))
"""
    runs = []
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        runs.append(done.stdout)
    assert runs[0] == runs[1] == runs[2]
    assert json.loads(runs[0])[0][3] is not None


# --------------------------------------------------------------------------- real data: no false positives


def write_recipe(path: Path, body: str) -> Path:
    path.write_text(f"name: dc\nseed: 3\noutput_dir: {path.parent / 'out'}\n{body}", encoding="utf-8")
    return path


def test_real_fixture_sources_against_real_mmlu_questions(tmp_path, raw_fixtures):
    """Every fixture source against the 153 MMLU dev/val questions of the fixtures.

    Checked by hand: none of the WikiDoc, ChatDoctor, StackExchange, MEDIQA, CORD-19, OpenAssistant
    or PubMed fixture records holds an MMLU question (0 hits); the mmlu source reads the same 153
    questions, and each of its records is found (two questions appear in both clinical_knowledge and
    college_medicine, and both copies are credited).
    """
    r = raw_fixtures
    recipe = write_recipe(
        tmp_path / "r.yaml",
        f"""sources:
  wikidoc:
    loader: wikidoc
    path: {r}/wikidoc/*.json
    options: {{kind: patient_information}}
  chatdoctor: {{loader: chatdoctor, path: "{r}/chatdoctor/*.json"}}
  stackexchange: {{loader: stackexchange, path: "{r}/stackexchange/*/*.xml"}}
  mediqa: {{loader: mediqa, path: "{r}/mediqa/*.xml"}}
  cord19: {{loader: cord19, path: "{r}/cord19/*.csv"}}
  openassistant: {{loader: openassistant, path: "{r}/openassistant/*.jsonl"}}
  pubmed_causal: {{loader: pubmed_causal, path: "{r}/pubmed_causal/*.csv"}}
  pubmed_health_advice: {{loader: pubmed_health_advice, path: "{r}/pubmed_health_advice/*.csv"}}
  mmlu: {{loader: mmlu, path: "{r}/mmlu/*/*.csv"}}
benchmarks:
  mmlu_devval: {{kind: mmlu, path: "{r}/mmlu/*/*.csv"}}
""",
    )
    result = build(recipe, progress=False)
    m = result.manifest.to_json()
    for name, s in m["sources"].items():
        expected = {"mmlu_devval": 153} if name == "mmlu" else {}
        assert s["contaminated"] == expected, name
        assert s["dropped"].get("contaminated", 0) == sum(expected.values()), name
    assert m["sources"]["mmlu"]["sampled"] == 0
    b = m["decontamination"]["benchmarks"]["mmlu_devval"]
    assert (b["kind"], b["questions"], b["hits"], b["records"]) == ("mmlu", 153, 153, 153)
    assert len(b["paths"]) == 12 and all(p.endswith(".csv") for p in b["paths"])
    rows = [json.loads(line) for line in (result.out_dir / CONTAMINATION_NAME).read_text().splitlines()]
    assert len(rows) == 153 and {row["source"] for row in rows} == {"mmlu"}
    assert {row["match"] for row in rows} == {"ngram"}  # the input also holds the options


# --------------------------------------------------------------------------- a build end to end


def medqa_row(question: str, options: list[str], answer: int = 0) -> str:
    opts = {chr(65 + i): o for i, o in enumerate(options)}
    letter = chr(65 + answer)
    return json.dumps(
        {
            "question": question,
            "answer": opts[letter],
            "options": opts,
            "meta_info": "step1",
            "answer_idx": letter,
        }
    )


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A MedQA-format train file with a test question copied, one paraphrased and clean ones, and
    the benchmarks: a MedQA test file and an MMLU test CSV."""
    raw = tmp_path / "raw"
    (raw / "train").mkdir(parents=True)
    (raw / "bench").mkdir()
    clean = [
        (
            "A 60-year-old man has crushing chest pain radiating to the left arm. What is the diagnosis?",
            ["Myocardial infarction", "Pericarditis", "Aortic dissection", "Pneumothorax"],
        ),
        (
            "A 3-year-old boy has a barking cough and stridor at night. What is the likely cause?",
            ["Parainfluenza virus", "Adenovirus", "Rhinovirus", "Influenza B"],
        ),
    ]
    train = [
        medqa_row(LONG, LONG_OPTIONS),  # copied from the test set
        medqa_row(
            SHORT.replace("lateral", "Lateral").replace("?", " ?"), SHORT_OPTIONS, 2
        ),  # short, as in MMLU
        *(medqa_row(q, o) for q, o in clean),
    ]
    (raw / "train" / "train.jsonl").write_text("\n".join(train) + "\n", encoding="utf-8")
    (raw / "bench" / "test.jsonl").write_text(medqa_row(LONG, LONG_OPTIONS) + "\n", encoding="utf-8")
    (raw / "bench" / "anatomy_test.csv").write_text(
        f'"{SHORT}",{",".join(SHORT_OPTIONS)},C\n"{TINY}",{",".join(TINY_OPTIONS)},B\n', encoding="utf-8"
    )
    return raw


def tiny_recipe(tmp_path: Path, raw: Path, extra: str = "") -> Path:
    return write_recipe(
        tmp_path / "r.yaml",
        f"""sources:
  medqa:
    loader: medqa
    path: {raw}/train/train.jsonl
benchmarks:
  medqa_test: {{kind: medqa, path: "{raw}/bench/test.jsonl"}}
  mmlu_test: {{kind: mmlu, path: "{raw}/bench/*.csv"}}
{extra}""",
    )


def test_build_drops_and_reports_contaminated_records(tmp_path, tiny):
    result = build(tiny_recipe(tmp_path, tiny), progress=False)
    m = result.manifest.to_json()
    s = m["sources"]["medqa"]
    assert s["read"] == 4 and s["sampled"] == 2
    assert s["dropped"] == {"contaminated": 2}
    assert s["contaminated"] == {"medqa_test": 1, "mmlu_test": 1}
    assert s["read"] == s["dropped_total"] + s["duplicates"] + s["unique"]
    d = m["decontamination"]
    assert (d["ngram"], d["short_ngram"], d["short_below"], d["exact"]) == (13, 8, 13, True)
    assert (
        d["benchmarks"]["medqa_test"]["kind"] == "medqa" and d["benchmarks"]["medqa_test"]["questions"] == 1
    )
    assert d["benchmarks"]["medqa_test"]["paths"] == [str(tiny / "bench/test.jsonl")]
    assert d["benchmarks"]["medqa_test"]["inputs"][0]["sha256"]
    assert (d["benchmarks"]["mmlu_test"]["questions"], d["benchmarks"]["mmlu_test"]["hits"]) == (2, 1)
    rows = [json.loads(line) for line in (result.out_dir / CONTAMINATION_NAME).read_text().splitlines()]
    assert [r["benchmark"] for r in sorted(rows, key=lambda r: r["benchmark"])] == ["medqa_test", "mmlu_test"]
    for row in rows:
        assert set(row) == {
            "source",
            "id",
            "instruction",
            "benchmark",
            "item_id",
            "match",
            "coverage",
            "spans",
            "question",
        }
        assert row["source"] == "medqa" and row["match"] == "ngram" and row["id"].startswith("medqa:")
        assert row["coverage"] == 1.0 and row["spans"][0]["start"] == 0 and row["spans"][0]["text"]
    assert m["outputs"][CONTAMINATION_NAME]["records"] == 2 and m["outputs"][CONTAMINATION_NAME]["sha256"]
    dropped = json.loads((result.out_dir / DROPPED_NAME).read_text())["medqa"]["contaminated"]
    assert {r["detail"].split(":", 1)[0] for r in dropped} == {"medqa_test", "mmlu_test"}
    kept = json.loads((result.out_dir / JSON_NAME).read_text())
    assert all("lateral rectus" not in r["input"] and "palpitations" not in r["input"] for r in kept)
    # the same build again: byte-identical report
    again = build(tiny_recipe(tmp_path, tiny), output_dir=tmp_path / "again", progress=False)
    assert (again.out_dir / CONTAMINATION_NAME).read_bytes() == (
        result.out_dir / CONTAMINATION_NAME
    ).read_bytes()


def test_decontaminate_picks_benchmarks_and_can_be_off(tmp_path, tiny):
    only = build(tiny_recipe(tmp_path, tiny, "decontaminate: {benchmarks: [mmlu_test]}\n"), progress=False)
    assert only.manifest.to_json()["sources"]["medqa"]["contaminated"] == {"mmlu_test": 1}
    assert list(only.manifest.to_json()["decontamination"]["benchmarks"]) == ["mmlu_test"]
    off = build(tiny_recipe(tmp_path, tiny, "decontaminate: {benchmarks: []}\n"), progress=False)
    assert (
        "decontamination" not in off.manifest.to_json()
        and "contaminated" not in off.manifest.to_json()["sources"]["medqa"]
    )
    assert not (off.out_dir / CONTAMINATION_NAME).exists() and off.records == 4


def test_missing_benchmark_files_are_named_by_build_and_check(tmp_path, tiny, monkeypatch):
    (tiny / "bench" / "test.jsonl").unlink()
    recipe = tiny_recipe(tmp_path, tiny)
    with pytest.raises(MeadowError, match="benchmark 'medqa_test': no file matches"):
        build(recipe, progress=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", str(recipe)])
    assert result.exit_code == 1
    assert "missing" in result.output and "benchmark 'medqa_test'" in result.output
    assert "ok mmlu_test: benchmark mmlu" in result.output
    assert "1 of 3 sources and benchmarks have no input file" in result.output


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("benchmarks:\n  b: {kind: mmlu, path: x.csv}\ndecontaminate: {benchmarks: [c]}\n", "'c' not in"),
        ("benchmarks:\n  c: {kind: mmlu, path: x.csv}\n", "'c' is both a source and a benchmark"),
        (
            "benchmarks:\n  b: {kind: medqa, path: x, subjects: [anatomy]}\n",
            "'subjects' applies to kind mmlu",
        ),
        ("benchmarks:\n  b: {kind: medmcqa, path: x}\n", "benchmarks.b.kind"),
        ("benchmarks:\n  b: {kind: mmlu, path: x, fetch: {kind: url, url: ftp://x}}\n", "not an http(s) URL"),
        ("decontaminate: {ngram: 5, short_ngram: 8}\n", "short_ngram (8) is larger than ngram (5)"),
        ("decontaminate: {n: 5}\n", "decontaminate.n: unknown key"),
        ("decontaminate: {coverage: 0}\n", "decontaminate.coverage"),
        ("decontaminate: {coverage: 1.5}\n", "decontaminate.coverage"),
    ],
)
def test_bad_benchmark_settings(tmp_path, body, expected):
    path = tmp_path / "r.yaml"
    path.write_text(f"name: x\nsources:\n  c:\n    loader: cord19\n    path: a.csv\n{body}")
    with pytest.raises(MeadowError) as err:
        load_recipe(path)
    assert expected in str(err.value)


def test_a_malformed_benchmark_file_names_the_benchmark_file_and_line(tmp_path, tiny):
    (tiny / "bench" / "test.jsonl").write_text(
        medqa_row(LONG, LONG_OPTIONS) + "\n{not json\n", encoding="utf-8"
    )
    with pytest.raises(MeadowError) as err:
        build(tiny_recipe(tmp_path, tiny), progress=False)
    assert str(err.value).startswith(f"benchmark 'medqa_test': {tiny / 'bench' / 'test.jsonl'}:2")


def test_the_probe_of_every_table_changes_no_verdict():
    # A record that shares a single n-gram with a question, at every offset from the probe's stride:
    # found by the index (which looks up a gram every ``stride`` words first) as by a plain lookup of
    # every n-gram. The questions are short enough that one shared n-gram covers 40% of them.
    long_q = (
        "Which enzyme deficiency causes accumulation of galactocerebroside in oligodendrocytes "
        "leading to globoid cells and demyelination?"
    )
    questions = [("long", long_q, ["Galactocerebrosidase", "Hexosaminidase"]), ("gait", GAIT, GAIT_OPTIONS)]
    index = Index(DecontaminateSettings(), [bench(questions=questions)])
    plain = Index(DecontaminateSettings(), [bench(questions=questions)])
    for table in (plain.long, plain.short):
        table.stride = 1
    assert (index.long.stride, index.short.stride) == (4, 2)
    filler = [
        "patients",
        "often",
        "report",
        "mild",
        "symptoms",
        "during",
        "routine",
        "visits",
        "to",
        "the",
        "clinic",
    ]
    found = 0
    for item_id, question, n in (("long", long_q, 13), ("gait", GAIT, 8)):
        ws = normalize(question).split()
        for start in range(len(ws) - n + 1):
            for lead in range(5):
                text = " ".join([*filler[:lead], *ws[start : start + n], *filler[5:]])
                record = rec("Read this.", text, "Noted.")
                got = index.find(record)
                assert got == plain.find(record), (item_id, start, lead)
                found += got is not None and got.hit.item_id == item_id
    assert found >= 15  # one shared n-gram covers enough of these questions in most windows
