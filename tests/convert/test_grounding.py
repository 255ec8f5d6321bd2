"""The support check of rephrased answers (meadow.convert.grounding) on hand-made pairs."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fake_openai import FakeOpenAI, good_answer, last_user
from test_rephrase import cards, run

from meadow.convert.grounding import STOP_WORDS, stem, support
from meadow.convert.prompts import JUDGE, TASKS, parse_answer, parse_verdict, split_section
from meadow.convert.runner import Rejected
from meadow.records import Record
from meadow.schemas.llm import LLMSettings

DEFAULT = LLMSettings().min_support
assert DEFAULT is not None

METFORMIN = (
    "Front: [...] is avoided in severe renal impairment because of the risk of [...].\n"
    "Back: Metformin is avoided in severe renal impairment because of the risk of lactic acidosis."
)
TRIAD = (
    'Front: Classic triad of nephritic syndrome?\nBack: Hematuria\nHypertension\nOliguria with "smoky" urine'
)
SODIUM = "Front: Reference range of serum sodium in adults?\nBack: 135–145 mmol/L"
WRIST = (
    "Front: Which nerve is injured in wrist drop?\nBack: The radial nerve\n(e.g. midshaft humeral fracture)"
)
PACEMAKER = (
    "Front: The [...] is the normal pacemaker of the heart and fires at [...] beats per minute.\n"
    "Back: The sinoatrial node is the normal pacemaker of the heart and fires at 60-100 beats per minute.\n"
    "It lies in the wall of the right atrium."
)
HEMATURIA = (
    "Front: How does hematuria occur in glomerulonephritis?\n"
    "Back: Red cells leak through the damaged glomerular basement membrane."
)

SUPPORTED = [
    (
        METFORMIN,
        "Why is metformin avoided in severe renal impairment?",
        "Metformin is avoided in severe renal impairment because of the risk of lactic acidosis.",
    ),
    # words of the question that the passage lacks ("associated", "use") may come back in the answer
    (
        METFORMIN,
        "What is the risk associated with metformin use in severe renal impairment?",
        "The risk associated with metformin use in severe renal impairment is lactic acidosis.",
    ),
    (
        TRIAD,
        "What is the classic triad of nephritic syndrome?",
        "The classic triad of nephritic syndrome is hematuria, hypertension and oliguria with smoky urine.",
    ),
    (
        TRIAD,
        "What is the classic triad of nephritic syndrome?",
        "The classic triad of nephritic syndrome:\n"
        "1. Hematuria\n2. Hypertension\n3. Oliguria with smoky urine",
    ),
    (
        SODIUM,
        "What is the reference range of serum sodium in adults?",
        "The reference range of serum sodium in adults is 135 to 145 mmol/L.",
    ),
    (WRIST, "Which nerve is injured in wrist drop?", "The radial nerve is injured in wrist drop."),
    (
        WRIST,
        "What causes wrist drop?",
        "Wrist drop is caused by an injury of the radial nerve, e.g. in a midshaft humeral fracture.",
    ),
    (
        PACEMAKER,
        "What is the normal pacemaker of the heart?",
        "The sinoatrial node, which lies in the wall of the right atrium, is the normal pacemaker of the "
        "heart; it fires at 60 to 100 beats per minute.",
    ),
    # inflections: occur/occurs, leak/leaked, damaged/damage
    (
        HEMATURIA,
        "What causes hematuria in glomerulonephritis?",
        "In glomerulonephritis, hematuria occurs because red cells leaked through damage to the glomerular "
        "basement membrane.",
    ),
    # case, and the heading's words in another form
    (
        "Hyperkalemia - Treatment\n\nTREAT severe HYPERKALEMIA with intravenous calcium gluconate.",
        "How is severe hyperkalemia treated?",
        "Severe hyperkalemia is treated with calcium gluconate given intravenously.",
    ),
    # numbers written differently: thousands commas, trailing zeros, glued units, percent in words
    (
        "Front: Daily limit of acetaminophen?\nBack: 4,000 mg; hepatotoxic above 150 mg/kg",
        "What is the daily limit of acetaminophen?",
        "The daily limit of acetaminophen is 4000 mg; it is hepatotoxic above 150.0 mg/kg.",
    ),
    (
        "Front: Fever threshold?\nBack: A core temperature of 38.0 °C or more",
        "What temperature is a fever?",
        "A fever is a core temperature of 38°C or more.",
    ),
    (
        "Front: Share of cardiac output to the kidneys?\nBack: 20-25%",
        "What share of the cardiac output goes to the kidneys?",
        "About 20 to 25 percent of the cardiac output goes to the kidneys.",
    ),
    (
        "Front: Hyperkalemia is a serum potassium above?\nBack: 5.0 mEq/L",
        "Above what serum potassium is hyperkalemia?",
        "Hyperkalemia is a serum potassium above 5 mEq/L.",
    ),
    # a number of the question that the passage holds
    (
        "Front: Drug of choice for type 2 diabetes?\nBack: Metformin",
        "What is the first drug for type 2 diabetes?",
        "Metformin is the drug of choice for type 2 diabetes.",
    ),
]

UNSUPPORTED = [
    # the three seen from SmolLM2-135M on recipes/demo_llm.yaml
    (
        METFORMIN,
        "What is the risk of lactic acidosis associated with metformin use?",
        "Lactose is avoided in severe renal impairment because of the risk of lactic acidosis.",
        "lactos",
    ),
    (
        TRIAD,
        "How does Hematuria occur?",
        "Hematuria is caused by a combination of Phoenaemia, a coagulation disorder, and Hepatocyte LLC, a "
        "protein involved in the regulation of the coagulation cascade.",
        "phoenaemia",
    ),
    (
        SODIUM,
        "What is the reference range of serum sodium in adults?",
        "The reference range of serum sodium in adults is 135 mmol/L.",
        "range 135-145 cut to 135",
    ),
    # a swapped name, a swapped unit, an added negation, an invented number
    (WRIST, "Which nerve is injured in wrist drop?", "The ulnar nerve is injured in wrist drop.", "ulnar"),
    (
        SODIUM,
        "What is the reference range of serum sodium in adults?",
        "The reference range of serum sodium in adults is 135-145 mg/dL.",
        "mg/dl",
    ),
    (
        METFORMIN,
        "Is metformin avoided in severe renal impairment?",
        "Metformin is not avoided in severe renal impairment.",
        "not",
    ),
    (
        PACEMAKER,
        "How fast does the sinoatrial node fire?",
        "The sinoatrial node fires at 60-120 beats per minute.",
        "number 120 (of 60-120) not in the passage",
    ),
    (
        PACEMAKER,
        "How fast does the sinoatrial node fire?",
        "The sinoatrial node fires at 100 beats per minute.",
        "range 60-100 cut to 100",
    ),
    # a number in the question is no licence for the answer
    (
        "Front: Drug of choice for type 2 diabetes?\nBack: Metformin",
        "What are 2 drugs for type 2 diabetes?",
        "Metformin and 3 others are drugs for type 2 diabetes.",
        "number 3 not in the passage",
    ),
]


@pytest.mark.parametrize(("passage", "question", "answer"), SUPPORTED)
def test_supported_answers_pass(passage, question, answer):
    s = support(passage, question, answer)
    assert s.passes(DEFAULT), s


@pytest.mark.parametrize(("passage", "question", "answer", "why"), UNSUPPORTED)
def test_unsupported_answers_fail_and_say_why(passage, question, answer, why):
    s = support(passage, question, answer)
    assert not s.passes(DEFAULT), s
    assert why in s.describe(DEFAULT)


def test_the_score_is_the_share_of_the_answers_own_tokens_found():
    s = support(
        METFORMIN,
        "What is the risk of lactic acidosis associated with metformin use?",
        "Lactose is avoided in severe renal impairment because of the risk of lactic acidosis.",
    )
    # beyond the question: lactose, avoided, severe, renal, impairment; one of five unsupported
    assert s.score == 0.8 and s.unsupported == ("lactos",) and not s.problems
    assert s.describe(0.85) == "support 0.80 < 0.85 (not in the passage: lactos)"
    # nothing beyond the question: nothing unsupported
    assert support(WRIST, "Is the radial nerve injured in wrist drop?", "Yes, the radial nerve.").score == 1.0


def test_the_default_tolerates_one_unbacked_word_in_a_long_answer_not_in_a_short_one():
    """0.85: the loosest round threshold that still removes every unsupported answer seen on
    recipes/demo_llm.yaml (the highest scored 0.80), leaving a capable model room to reword."""
    question = "What is the normal pacemaker of the heart?"
    long = (
        "The sinoatrial node, which lies in the wall of the right atrium, is the natural pacemaker "
        "of the heart and fires at 60-100 beats per minute."
    )
    s = support(PACEMAKER, question, long)
    assert s.unsupported == ("natural",) and s.score == 0.9167 and s.passes(DEFAULT)
    s = support(PACEMAKER, question, "The sinoatrial node is the natural pacemaker.")
    assert s.unsupported == ("natural",) and s.score == 0.6667 and not s.passes(DEFAULT)


@pytest.mark.parametrize(
    ("forms", "key"),
    [
        ("occur occurs occurred occurring", "occur"),
        ("treat treats treated treating treatment treatments", "treat"),
        ("diagnosis diagnoses diagnosed", "diagnos"),
        ("cause causes caused causing", "caus"),
        ("bleed bleeds bleeding", "bleed"),
        ("hypertension hypertensive", "hypertens"),
        ("infection infections infected", "infect"),
        ("kidney kidneys", "kidne"),
        ("therapy therapies", "therap"),
        ("injury injuries injured", "injur"),
        ("virus viruses", "virus"),
        ("severe severely", "sever"),
    ],
)
def test_inflections_share_one_stem(forms, key):
    assert {stem(w) for w in forms.split()} == {key}


@pytest.mark.parametrize(
    ("a", "b"), [("lactose", "lactic"), ("nephritic", "nephrotic"), ("hypokalemia", "hyperkalemia")]
)
def test_words_that_merely_start_alike_stay_apart(a, b):
    assert stem(a) != stem(b)


def test_numbers_rule_ignores_list_marks_but_not_numbers_glued_to_units():
    assert support(TRIAD, "What is the classic triad?", "(1) hematuria (2) hypertension (3) oliguria").passes(
        1.0
    )
    s = support("Front: Dose?\nBack: 10 mg", "What is the dose?", "The dose is 20mg.")
    assert s.problems == ("number 20 not in the passage",)


def test_negations_are_content_words():
    assert not {"not", "no", "never", "without"} & STOP_WORDS


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_tasks_worked_example_is_grounded(task):
    """The example the model imitates must pass the check it is held to."""
    t = TASKS[task]
    text, answer = t.example
    fields = parse_answer(answer, t.fields)
    assert fields is not None
    if "answer" in t.fields:
        s = support(text, fields["question"], fields["answer"])
        assert s.passes(DEFAULT), s
    else:
        assert split_section(text)[1]  # the section text is the answer: supported by construction


def test_min_support_is_validated_and_can_be_turned_off():
    assert LLMSettings(min_support=None).min_support is None
    with pytest.raises(ValueError, match="less than or equal to 1"):
        LLMSettings(min_support=1.5)
    assert json.loads(LLMSettings().model_dump_json())["judge"] is False


# ------------------------------------------------------------------ in the runner


def _judging(body: dict) -> bool:
    return "Source text:" in last_user(body)


def test_an_unsupported_answer_is_re_asked_then_dropped_with_its_pair(tmp_path):
    def behave(body, n):
        if body["temperature"] > 0:  # the re-ask
            return ("ok", good_answer(body))
        answer = json.loads(good_answer(body))
        return ("ok", json.dumps({**answer, "answer": "Placebo, 500 mg."}))

    with FakeOpenAI(behave) as server:
        results, stats = run(server, tmp_path, cards(2), invalid_retries=1)
        assert all(isinstance(r, Record) and r.meta["attempt"] == 1 for r in results)
        assert results[0].meta["support"] == 1.0
        rejected = stats.rejected_samples[0]
        assert rejected["reason"] == "unsupported_answer" and rejected["support"] == 0.0
        assert "number 500 not in the passage" in rejected["detail"]
        results, stats = run(server, tmp_path / "again", cards(2), invalid_retries=0)
    assert all(isinstance(r, Rejected) and r.reason == "unsupported_answer" for r in results)
    assert results[0].record is not None and results[0].record.output == "Placebo, 500 mg."
    assert "(not in the passage: #500, mg, placebo)" in results[0].detail
    assert stats.failed == {"unsupported_answer": 2} and stats.accepted == 0


def test_the_check_is_off_with_min_support_null(tmp_path):
    def behave(body, n):
        return ("ok", json.dumps({**json.loads(good_answer(body)), "answer": "Placebo."}))

    with FakeOpenAI(behave) as server:
        results, _ = run(server, tmp_path, cards(1), min_support=None)
    assert isinstance(results[0], Record) and "support" not in results[0].meta


def test_the_judge_is_asked_through_the_same_backend_and_cached(tmp_path):
    def behave(body, n):
        if not _judging(body):
            return ("ok", good_answer(body))
        verdict = "unsupported" if "condition 1\n" in last_user(body) else "supported"
        return ("ok", json.dumps({"verdict": verdict}))

    with FakeOpenAI(behave) as server:
        results, stats = run(server, tmp_path, cards(3), judge=True, invalid_retries=0)
        assert [type(r) for r in results] == [Record, Rejected, Record]
        assert results[1].reason == "judge_rejected" and "grounding_judge@v1" in results[1].detail
        assert stats.judged == {"supported": 2, "unsupported": 1}
        assert stats.failed == {"judge_rejected": 1}
        assert server.total == 6 and stats.requests == 6  # one rephrasing and one judging each
        judged = [b for b in server.bodies if _judging(b)]
        assert len(judged) == 3 and all(b["temperature"] == 0.0 for b in judged)
        assert any(
            "Question: What should you know about this: Drug of choice for condition 0?\nAnswer: "
            "Medicine 0." in last_user(b)
            for b in judged
        )

        again, stats2 = run(server, tmp_path, cards(3), judge=True, invalid_retries=0)
        assert again == results and server.total == 6  # a rebuild sends no request
        assert stats2.cache_hits == 6 and stats2.judged == stats.judged
    db = sqlite3.connect(tmp_path / "cache.sqlite")
    assert db.execute("SELECT COUNT(*) FROM answers WHERE request LIKE '%Source text:%'").fetchone()[0] == 3


def test_a_verdict_the_judge_does_not_give_keeps_the_pair_and_is_counted(tmp_path):
    def behave(body, n):
        return ("ok", "I am not sure." if _judging(body) else good_answer(body))

    with FakeOpenAI(behave) as server:
        results, stats = run(server, tmp_path, cards(2), judge=True)
    assert all(isinstance(r, Record) for r in results)
    assert stats.judged == {"unclear": 2} and not stats.failed


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('{"verdict": "supported"}', True),
        ('{"verdict": "unsupported"}', False),
        ('{"verdict": "not supported"}', False),
        ("Yes.", True),
        ("No, it adds a drug.", False),
        ("maybe", None),
    ],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) is verdict


def test_the_judges_worked_examples_agree_with_the_support_check():
    for text, question, answer, verdict in JUDGE.examples:
        assert support(text, question, answer).passes(DEFAULT) is (verdict == "supported")
