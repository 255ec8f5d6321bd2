"""mediqa loader: MEDIQA 2019 Task 3 QA XML (real fixtures) and MEDIQA-AnS JSON (built here)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, get
from meadow.sources.mediqa import QA_INSTRUCTION, SUMMARY_INSTRUCTION, MediqaOptions, load

LIVEQA = "MEDIQA2019-Task3-QA-TrainingSet1-LiveQAMed.first10q.xml"
ALEXA = "MEDIQA2019-Task3-QA-TrainingSet2-Alexa.first5q.xml"


def run(paths, **options) -> list:
    return list(load([Path(p) for p in paths], MediqaOptions(**options)))


def records(items) -> list[Record]:
    return [i for i in items if isinstance(i, Record)]


def drops(items) -> Counter:
    return Counter(i.reason for i in items if isinstance(i, Drop))


def test_registered():
    assert get("mediqa").load is load


# --- real MEDIQA 2019 QA XML -----------------------------------------------------------


@pytest.mark.parametrize("name", [LIVEQA, ALEXA])
@pytest.mark.parametrize("min_score", [3, 4])
def test_real_xml_counts_match_elementtree(raw_fixtures, name, min_score):
    path = raw_fixtures / "mediqa" / name
    root = ET.parse(path).getroot()
    answers = root.findall("./Question/AnswerList/Answer")
    expected = {
        f"mediqa:{root.tag}:{a.get('AID')}" for a in answers if int(a.get("ReferenceScore")) >= min_score
    }
    assert 0 < len(expected) < len(answers)

    items = run([path], min_reference_score=min_score)
    assert {r.id for r in records(items)} == expected
    assert drops(items) == Counter({"low_reference_score": len(answers) - len(expected)})
    assert len(items) == len(answers)  # one item per answer
    assert all(r.instruction == QA_INSTRUCTION and r.source == "mediqa" for r in records(items))


def test_real_xml_known_record(raw_fixtures):
    path = raw_fixtures / "mediqa" / LIVEQA
    root = ET.parse(path).getroot()
    q = root.find("Question")
    a = q.find("AnswerList/Answer")
    (rec,) = [r for r in records(run([path])) if r.id.endswith(":1_Answer1")]
    assert rec.id == "mediqa:MEDIQA2019-Task3-QA-TrainingSet1-LiveQAMed:1_Answer1"
    assert rec.input == q.findtext("QuestionText").strip()
    assert rec.input.startswith("Noonan syndrome. What are the references with noonan syndrome")
    assert rec.output == a.findtext("AnswerText").strip()
    assert rec.output.startswith("Noonan syndrome: Noonan syndrome is a genetic disorder")
    assert "there's no family history" in rec.output  # &apos; decoded
    assert rec.meta == {
        "format": "mediqa2019_qa",
        "collection": "MEDIQA2019-Task3-QA-TrainingSet1-LiveQAMed",
        "question_id": "1",
        "answer_id": "1_Answer1",
        "reference_score": 4,
        "reference_rank": 2,
        "system_rank": 1,
        "url": "https://www.mayoclinic.org/diseases-conditions/noonan-syndrome/symptoms-causes/syc-20354422",
        "file": LIVEQA,
    }


def test_real_xml_both_files_ids_unique(raw_fixtures):
    items = run(sorted((raw_fixtures / "mediqa").glob("*.xml")))
    ids = [r.id for r in records(items)]
    assert len(ids) == len(set(ids)) == 34  # 13 + 4 (LiveQA) + 9 + 8 (Alexa) scores >= 3


def test_truncated_real_xml_names_file_and_line(raw_fixtures, tmp_path):
    data = (raw_fixtures / "mediqa" / ALEXA).read_bytes()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        run([cut])
    assert err.value.path == str(cut)
    assert err.value.line is not None and err.value.line > 1
    assert "truncated XML" in str(err.value)


# --- MEDIQA 2019 QA XML: bad input --------------------------------------------------------


def qa_xml(answers: str, question: str = "<QuestionText>What is gout?</QuestionText>") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<MEDIQA-Test>\n\t<Question QID="7">\n\t\t'
        f"{question}\n\t\t<AnswerList>\n{answers}\n\t\t</AnswerList>\n\t</Question>\n</MEDIQA-Test>\n"
    )


def answer(attrs: str, text: str = "Gout is a form of arthritis caused by uric acid crystals.") -> str:
    return (
        f"\t\t\t<Answer {attrs}>\n\t\t\t\t<AnswerURL>https://example.org/gout</AnswerURL>\n"
        f"\t\t\t\t<AnswerText>{text}</AnswerText>\n\t\t\t</Answer>"
    )


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_xml_attribute_problems_are_malformed_drops(tmp_path):
    path = write(
        tmp_path,
        "bad.xml",
        qa_xml(
            "\n".join(
                [
                    answer('AID="7_Answer1" SystemRank="1" ReferenceRank="1" ReferenceScore="4"'),
                    answer('SystemRank="2" ReferenceRank="2" ReferenceScore="4"'),
                    answer('AID="7_Answer3" SystemRank="3" ReferenceRank="3"'),
                    answer('AID="7_Answer4" SystemRank="4" ReferenceRank="4" ReferenceScore="high"'),
                    answer('AID="7_Answer5" SystemRank="5" ReferenceRank="5" ReferenceScore="9"'),
                    answer('AID="7_Answer6" SystemRank="6" ReferenceRank="6" ReferenceScore="3"', text=""),
                    answer('AID="7_Answer7" SystemRank="7" ReferenceRank="7" ReferenceScore=" 3 "'),
                ]
            )
        ),
    )
    items = run([path])
    by_reason = {i.reason: i for i in items if isinstance(i, Drop)}
    assert drops(items) == Counter(
        {
            "missing_answer_id": 1,
            "missing_reference_score": 1,
            "invalid_reference_score": 2,
            "empty_output": 1,
        }
    )
    for reason in ("missing_answer_id", "missing_reference_score", "invalid_reference_score"):
        assert by_reason[reason].malformed
        assert by_reason[reason].where.startswith(f"{path}:")
    assert not by_reason["empty_output"].malformed
    assert "'high'" in [d for d in items if isinstance(d, Drop) and "high" in d.detail][0].detail
    assert [r.id for r in records(items)] == ["mediqa:MEDIQA-Test:7_Answer1", "mediqa:MEDIQA-Test:7_Answer7"]
    assert records(items)[0].input == "What is gout?"


def test_xml_question_problems(tmp_path):
    ok = answer('AID="7_Answer1" SystemRank="1" ReferenceRank="1" ReferenceScore="4"')
    empty_q = write(tmp_path, "empty_q.xml", qa_xml(ok, question="<QuestionText>  </QuestionText>"))
    assert drops(run([empty_q])) == Counter({"empty_question": 1})
    no_q = write(tmp_path, "no_q.xml", qa_xml(ok, question=""))
    (drop,) = run([no_q])
    assert drop.reason == "missing_question_text" and drop.malformed
    no_answers = write(tmp_path, "none.xml", qa_xml(""))
    (drop,) = run([no_answers])
    assert drop.reason == "no_answers" and "question 7" in drop.where


def test_xml_invalid_utf8_names_line(tmp_path):
    text = qa_xml(
        answer('AID="7_Answer1" SystemRank="1" ReferenceRank="1" ReferenceScore="4"', text="uric XX")
    )
    path = write(tmp_path, "latin1.xml", text.encode("utf-8").replace(b"XX", b"\xe9\xff"))
    with pytest.raises(InputError) as err:
        run([path])
    assert err.value.path == str(path) and err.value.line == 8


def test_xml_truncated_names_line(tmp_path):
    text = qa_xml(answer('AID="7_Answer1" SystemRank="1" ReferenceRank="1" ReferenceScore="4"'))
    path = write(tmp_path, "cut.xml", text[: text.index("</AnswerText>")])
    with pytest.raises(InputError, match=r"cut\.xml:8: invalid or truncated XML"):
        run([path])


def test_xml_10mb_field_is_dropped_not_crashed(tmp_path):
    big = "gout " * 2_100_000  # 10.5 MB, above libxml2's default 10 MB text-node limit
    path = write(
        tmp_path,
        "big.xml",
        qa_xml(
            answer('AID="7_Answer1" SystemRank="1" ReferenceRank="1" ReferenceScore="4"', text=big)
            + "\n"
            + answer('AID="7_Answer2" SystemRank="2" ReferenceRank="2" ReferenceScore="4"')
        ),
    )
    items = run([path])
    assert drops(items) == Counter({"too_long_output": 1})
    assert [r.id for r in records(items)] == ["mediqa:MEDIQA-Test:7_Answer2"]


def test_unknown_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="empty file"):
        run([write(tmp_path, "empty.json", "  \n")])
    with pytest.raises(InputError, match=r"unknown format \(starts with '\[\{\"question\": \"x\"\}\]'\)"):
        run([write(tmp_path, "list.json", '[{"question": "x"}]')])  # the text, not a bytes repr
    with pytest.raises(InputError, match="cannot open"):
        run([tmp_path / "missing.xml"])


# --- MEDIQA-AnS JSON (published layout) --------------------------------------------------


def ans_answer(n: int, qid: str = "133", **overrides) -> dict:
    answer = {
        "answer_abs_summ": f"Abstractive summary {n}.",
        "answer_ext_summ": f"Extractive summary {n}.",
        "section": f"Section {n}: oxazepam overdose information.",
        "article": f"Article {n}. Oxazepam overdose. Oxazepam is a medicine used to treat anxiety.",
        "url": f"https://example.org/{qid}/{n}",
        "rating": "3-Incomplete",
    }
    answer.update(overrides)
    return answer


def ans_data() -> dict:
    return {
        "133": {
            "question": "how much oxazepam could cause an overdose?",
            "multi_abs_summ": "Multi abstractive.",
            "multi_ext_summ": "Multi extractive.",
            "answers": {"133_Answer2": ans_answer(2), "133_Answer3": ans_answer(3)},
        },
        "201": {
            "question": "Is shingles contagious?",
            "multi_abs_summ": "Shingles can spread chickenpox.",
            "multi_ext_summ": "The rash is contagious until it crusts.",
            "answers": {"201_Answer1": ans_answer(1, qid="201")},
        },
    }


def write_json(
    tmp_path: Path, data, name="question_driven_answer_summarization_primary_dataset.json"
) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return path


def test_ans_default_four_single_summaries_per_answer(tmp_path):
    path = write_json(tmp_path, ans_data())
    items = run([path])
    recs = records(items)
    assert len(items) == len(recs) == 3 * 4  # medAlpaca: 552 answers x 4 = 2,208
    assert Counter(r.meta["summary_type"] for r in recs) == Counter(
        {"page_abs": 3, "page_ext": 3, "section_abs": 3, "section_ext": 3}
    )
    by_id = {r.id: r for r in recs}
    rec = by_id["mediqa:133_Answer2:page_abs"]
    assert rec.instruction == SUMMARY_INSTRUCTION
    assert rec.input == (
        "Question: how much oxazepam could cause an overdose?\n\n"
        "Article: Article 2. Oxazepam overdose. Oxazepam is a medicine used to treat anxiety."
    )
    assert rec.output == "Abstractive summary 2."
    assert rec.meta == {
        "format": "mediqa_ans",
        "question_id": "133",
        "answer_id": "133_Answer2",
        "summary_type": "page_abs",
        "url": "https://example.org/133/2",
        "rating": "3-Incomplete",
        "file": path.name,
    }
    sec = by_id["mediqa:201_Answer1:section_ext"]
    assert sec.input.endswith("Article: Section 1: oxazepam overdose information.")
    assert sec.output == "Extractive summary 1."


def test_ans_multi_document_summaries(tmp_path):
    path = write_json(tmp_path, ans_data())
    items = run([path], summary_types=["multi_abs", "multi_ext", "page_ext"])
    assert len(records(items)) == 2 * 2 + 3
    (multi,) = [r for r in records(items) if r.id == "mediqa:133:multi_abs"]
    assert multi.output == "Multi abstractive."
    assert multi.input == (
        "Question: how much oxazepam could cause an overdose?\n\nArticles:\n\n"
        "Section 2: oxazepam overdose information.\n\nSection 3: oxazepam overdose information."
    )
    assert multi.meta["n_answers"] == 2


def test_ans_bad_rows_are_counted(tmp_path):
    data = ans_data()
    data["133"]["answers"]["133_Answer2"]["article"] = 42  # wrong type
    data["133"]["answers"]["133_Answer3"]["answer_abs_summ"] = "   "  # empty summary
    data["133"]["answers"]["133_Answer4"] = ["not", "an", "object"]
    data["201"]["answers"]["201_Answer1"]["section"] = ""
    data["300"] = {"question": "No answers object", "answers": []}
    data["301"] = "not an object"
    data["302"] = {"question": " ", "answers": {}}
    items = run([write_json(tmp_path, data)])
    counted = drops(items)
    assert counted == Counter(
        {
            "missing_field": 2,  # page_abs, page_ext of 133_Answer2
            "empty_output": 2,  # page_abs, section_abs of 133_Answer3
            "invalid_answer": 1,
            "empty_section": 2,
            "invalid_question": 2,
            "empty_question": 1,
        }
    )
    malformed = {i.reason for i in items if isinstance(i, Drop) and i.malformed}
    assert malformed == {"missing_field", "invalid_answer", "invalid_question"}
    assert len(records(items)) == 2 + 2 + 2  # 133_Answer2 sections, 133_Answer3 ext, 201 page


def test_ans_truncated_names_file_and_question(tmp_path):
    path = write_json(tmp_path, ans_data())
    text = path.read_text()
    path.write_text(text[: text.index('"201"') + 40])
    items = []
    with pytest.raises(InputError) as err:
        for item in load([path], MediqaOptions()):
            items.append(item)
    assert err.value.path == str(path)
    assert "after question '133'" in str(err.value)
    assert len(records(items)) == 8  # the complete question before the cut was read


def test_ans_invalid_utf8_names_file_and_question(tmp_path):
    path = write_json(tmp_path, ans_data())
    path.write_bytes(path.read_bytes().replace(b"Is shingles", b"Is \xff shingles"))
    with pytest.raises(InputError, match="question '133'") as err:
        run([path])
    assert err.value.path == str(path)


def test_ans_10mb_field(tmp_path):
    data = ans_data()
    data["201"]["answers"]["201_Answer1"]["article"] = "x" * 10_000_000
    items = run([write_json(tmp_path, data)])
    assert drops(items) == Counter({"too_long_input": 2})
    assert len(records(items)) == 10


def test_options_validation():
    with pytest.raises(ValidationError):
        MediqaOptions(min_reference_score=5)
    with pytest.raises(ValidationError):
        MediqaOptions(summary_types=["page_abs", "page_abs"])
    with pytest.raises(ValidationError):
        MediqaOptions(summary_types=["page_summary"])
    with pytest.raises(ValidationError):
        MediqaOptions(min_score=3)


# --- project examples ---------------------------------------------------------------------


def test_examples_load(examples_dir):
    items = run(sorted((examples_dir / "mediqa").iterdir()))
    assert drops(items) == Counter({"low_reference_score": 3, "no_answers": 1, "empty_section": 2})
    recs = records(items)
    assert len(recs) == 5 + 10
    assert not any(i.malformed for i in items if isinstance(i, Drop))
    assert len({r.id for r in recs}) == len(recs)
