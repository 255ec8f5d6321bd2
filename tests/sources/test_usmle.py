"""usmle loader: medAlpaca's USMLE self-assessment layout, built in tmp_path (test data: no fixture)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from meadow.errors import InputError, MeadowError
from meadow.records import Record
from meadow.schemas.recipe import load_recipe
from meadow.sources import Drop, get
from meadow.sources.usmle import UsmleOptions, answer_letter, clean_question, load


def question(no: int, text: str | None = None, options: dict | None = None) -> dict:
    opts = {
        "A": f"Option A{no}",
        "B": f"Option B{no}",
        "C": f"Option C{no}",
        "D": f"Option D{no}",
        "E": f"E{no}",
    }
    return {
        "no": no,
        "question": text or f"A 30-year-old man presents with finding {no}. What is the diagnosis?",
        "options": opts if options is None else options,
    }


@pytest.fixture
def exam(tmp_path) -> Path:
    """step1: 5 questions, no 2 has an image, no 5 has no options; step2: 2 questions."""
    d = tmp_path / "usmle"
    d.mkdir()
    step1 = [question(n) for n in range(1, 5)] + [question(5, options={})]
    (d / "step1.json").write_text(json.dumps(step1, indent=4))
    (d / "step1_solutions.json").write_text(json.dumps({"1": "A", "2": "B", "3": "c", "4": "E", "5": "A"}))
    (d / "step2.json").write_text(json.dumps([question(1), question(2)]))
    (d / "step2_solutions.json").write_text(json.dumps({"1": "D", "2": "B"}))
    (d / "question_with_images.json").write_text(json.dumps({"step1": [2], "step2": [], "step3": []}))
    return d


def run(paths, **options) -> list:
    return list(load([Path(p) for p in paths], UsmleOptions(**options)))


def records(items) -> list[Record]:
    return [i for i in items if isinstance(i, Record)]


def drops(items) -> Counter:
    return Counter(i.reason for i in items if isinstance(i, Drop))


def test_registered_and_test_only(tmp_path):
    assert get("usmle").load is load
    assert get("usmle").test_only is True
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\nsources:\n  usmle:\n    loader: usmle\n    path: step1.json\n")
    with pytest.raises(MeadowError, match="test-only evaluation set"):
        load_recipe(recipe)


def test_published_layout(exam):
    items = run(sorted(exam.glob("*.json")))
    assert len(items) == 5 + 2
    assert drops(items) == Counter({"image_listed": 1, "no_options": 1})
    assert [r.id for r in records(items)] == [
        "usmle:step1:1",
        "usmle:step1:3",
        "usmle:step1:4",
        "usmle:step2:1",
        "usmle:step2:2",
    ]
    rec = records(items)[1]
    assert rec.instruction == "Please answer with one of the option in the bracket"
    assert rec.input == (
        "Q:A 30-year-old man presents with finding 3. What is the diagnosis?? \n"
        "{'A': 'Option A3', 'B': 'Option B3', 'C': 'Option C3', 'D': 'Option D3', 'E': 'E3'},"
    )
    assert rec.output == "C: Option C3"  # lower-case solution letter accepted
    assert rec.source == "usmle"
    assert rec.meta == {"split": "test", "step": 1, "has_image": False, "no": 3, "file": "step1.json"}
    image = [i for i in items if isinstance(i, Drop) and i.reason == "image_listed"][0]
    assert image.where == f"{exam / 'step1.json'} (record 1), question no 2" and not image.malformed


def test_include_images_marks_them(exam):
    items = run(sorted(exam.glob("*.json")), include_images=True)
    by_id = {r.id: r for r in records(items)}
    assert by_id["usmle:step1:2"].meta["has_image"] is True
    assert by_id["usmle:step1:2"].output == "B: Option B2"
    assert drops(items) == Counter({"no_options": 1})


def test_companion_files_found_beside_the_step_file(exam):
    items = run([exam / "step1.json"])
    assert len(records(items)) == 3 and drops(items)["image_listed"] == 1
    (exam / "question_with_images.json").unlink()
    assert drops(run([exam / "step1.json"]))["image_listed"] == 0  # image list is optional


def test_image_link_in_text_counts_as_image(tmp_path):
    qs = [
        question(1, "What does the ECG show? ![ECG](images/step3_q1.png)"),
        question(2, 'The biopsy is shown: <img src="q2.jpg">'),
        question(3, "See https://example.org/figures/q3.JPEG for the x-ray."),
        question(4, "A man has a fractured jpg-shaped laceration (no image)."),
    ]
    (tmp_path / "step3.json").write_text(json.dumps(qs))
    (tmp_path / "step3_solutions.json").write_text(json.dumps({str(n): "A" for n in range(1, 5)}))
    items = run([tmp_path / "step3.json"])
    assert drops(items) == Counter({"image_link": 3})
    assert [r.id for r in records(items)] == ["usmle:step3:4"]


def test_missing_and_unexpected_files(exam):
    (exam / "step2_solutions.json").unlink()
    with pytest.raises(InputError, match="step2_solutions.json") as err:
        run([exam / "step2.json"])
    assert err.value.path == str(exam / "step2.json")
    other = exam / "answers.json"
    other.write_text("{}")
    with pytest.raises(InputError, match="unexpected file"):
        run([other])


def test_malformed_questions_are_counted(tmp_path):
    qs = [
        question(1),
        {"question": "no number", "options": {"A": "x"}},
        question(3) | {"question": 12},
        question(4, options=["x", "y"]),
        question(5, options={"A": "x", "B": None}),
        question(6),  # no solution
        question(7),  # solution not an option
        "not an object",
        question(9, text="   "),
        question(10) | {"no": "10"},
    ]
    (tmp_path / "step1.json").write_text(json.dumps(qs))
    (tmp_path / "step1_solutions.json").write_text(json.dumps({"1": "A", "7": "F", "9": "A", "10": "B"}))
    items = run([tmp_path / "step1.json"])
    assert drops(items) == Counter(
        {
            "invalid_question": 3,
            "invalid_options": 2,
            "no_solution": 1,
            "answer_not_in_options": 1,
            "empty_question": 1,
        }
    )
    assert all(d.malformed for d in items if isinstance(d, Drop) and d.reason != "empty_question")
    assert [r.id for r in records(items)] == ["usmle:step1:1", "usmle:step1:10"]


def test_truncated_and_invalid_json(exam):
    step = exam / "step1.json"
    text = step.read_text()
    step.write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match="truncated") as err:
        run([step])
    assert err.value.path == str(step)

    sol = exam / "step2_solutions.json"
    sol.write_text('{"1": "D",\n "2": ')
    with pytest.raises(InputError, match="truncated") as err:
        run([exam / "step2.json"])
    assert (err.value.path, err.value.line) == (str(sol), 2)

    sol.write_text('{"1": 4, "2": "B"}')
    with pytest.raises(InputError, match="question number -> letter"):
        run([exam / "step2.json"])

    (exam / "question_with_images.json").write_text('{"step2": "all"}')
    with pytest.raises(InputError, match="question numbers"):
        run([exam / "step2.json", exam / "question_with_images.json"])


def test_invalid_utf8(exam):
    step = exam / "step2.json"
    step.write_bytes(step.read_bytes().replace(b"finding 2", b"finding \xff2"))
    with pytest.raises(InputError, match="UTF-?8") as err:
        run([step])
    assert err.value.path == str(step)


def test_10mb_question_is_dropped(exam):
    step = exam / "step2.json"
    step.write_text(json.dumps([question(1, "x" * 10_000_000 + "?"), question(2)]))
    items = run([step])
    assert drops(items) == Counter({"too_long_input": 1})
    assert [r.id for r in records(items)] == ["usmle:step2:2"]


def test_examples_load(examples_dir):
    items = run(sorted((examples_dir / "usmle").glob("step1*.json")))
    assert [r.id for r in records(items)] == ["usmle:step1:1", "usmle:step1:3"]
    assert drops(items) == Counter({"image_listed": 1, "image_field": 1, "no_options": 1})
    assert records(items)[0].output == "A: Glucose-6-phosphate dehydrogenase"


def test_examples_quirks_are_drops_with_reasons(examples_dir):
    """The same reading as the usmle benchmark kind (tests/benchmarks/test_benchmarks_usmle.py):
    the conversion's slips are malformed drops, a repeated record a plain one."""
    items = run(sorted((examples_dir / "usmle").glob("*.json")))
    assert [r.id for r in records(items)][2:] == [
        "usmle:step2:1",
        "usmle:step2:5",
        "usmle:step2:6",
        "usmle:step3:1",
        "usmle:step3:2",
        "usmle:step3:4",
    ]
    malformed = Counter(d.reason for d in items if isinstance(d, Drop) and d.malformed)
    assert malformed == Counter(
        {"merged_options": 1, "missing_option": 1, "duplicate_number": 2, "ambiguous_solution": 1}
    )
    by_id = {r.id: r for r in records(items)}
    assert by_id["usmle:step3:1"].input.startswith("Q:A 67-year-old woman")  # no ". \n" before it
    assert by_id["usmle:step2:5"].output == "C: Graves disease"  # keys "C ", solution "c"
    assert "'C': 'Graves disease'" in by_id["usmle:step2:5"].input
    with_images = records(run(sorted((examples_dir / "usmle").glob("*.json")), include_images=True))
    assert {"usmle:step1:5", "usmle:step2:7"} <= {r.id for r in with_images if r.meta["has_image"]}


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        (". \nA 67-year-old woman", "A 67-year-old woman"),
        ("  , ;A man", "A man"),
        (".\n\n12 hours after", "12 hours after"),
        ("...and then?", "...and then?"),  # an opening ellipsis before a small letter stays
        ('. "Doctor," she says', '. "Doctor," she says'),
        ("A man. \nB", "A man. \nB"),  # only the start
        ("   Which drug?  ", "Which drug?"),
    ],
)
def test_clean_question_strips_leading_pdf_debris_only(text, cleaned):
    assert clean_question(text) == cleaned


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("C", "C"),
        ("c", "C"),
        (" C ", "C"),
        ("(C)", "C"),
        ("C.", "C"),
        ("Answer: C", "C"),
        ("answer is c", "C"),
    ],
)
def test_answer_letter_forms(answer, letter):
    assert answer_letter(answer, {"A": "x", "B": "y", "C": "z"}) == letter


def test_answer_letter_by_option_text():
    options = {"A": "Graves disease", "B": "Hashimoto thyroiditis", "C": "graves disease"}
    assert answer_letter("Hashimoto thyroiditis.", options) == "B"
    assert answer_letter("Graves disease", options) is None  # two options read the same
    assert answer_letter("Thyroid storm", options) is None
