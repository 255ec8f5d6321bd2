"""chatdoctor loader: GenMedGPT-5k / HealthCareMagic-100k / iCliniq-10k JSON -> records."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, get
from meadow.sources._common import content_id
from meadow.sources.chatdoctor import INSTRUCTION, ChatDoctorOptions, variant_of

FIXTURE = "chatdoctor/chatdoctor5k.GenMedGPT-5k.first200.json"


def run(*paths: Path, **options) -> list:
    return list(get("chatdoctor").load(list(paths), ChatDoctorOptions(**options)))


def records(items: list) -> list[Record]:
    return [it for it in items if isinstance(it, Record)]


def drops(items: list) -> list[Drop]:
    return [it for it in items if isinstance(it, Drop)]


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def alpaca(question: str = "I have a headache.", answer: str = "Rest and drink water.") -> dict:
    return {"instruction": INSTRUCTION, "input": question, "output": answer}


def test_variant_from_file_name():
    assert variant_of(Path("chatdoctor5k.json")) == "genmedgpt_5k"
    assert variant_of(Path("chatdoctor5k.GenMedGPT-5k.first200.json")) == "genmedgpt_5k"
    assert variant_of(Path("HealthCareMagic-100k.json")) == "healthcaremagic_100k"
    assert variant_of(Path("iCliniq.json")) == "icliniq_10k"
    assert variant_of(Path("data.json")) is None


def test_real_genmedgpt_5k(raw_fixtures: Path):
    path = raw_fixtures / FIXTURE
    assert b"\r\n      {\r\n" in path.read_bytes()  # CRLF, 6-space indent as published
    upstream = json.loads(path.read_text(encoding="utf-8"))
    usable = [r for r in upstream if r["input"].strip() and r["output"].strip() and r["instruction"].strip()]
    assert len(upstream) == 200

    items = run(path)
    recs = records(items)
    assert len(items) == len(upstream)
    assert len(recs) == len(usable)
    assert not drops(items)
    assert [(r.input, r.output) for r in recs] == [(u["input"].strip(), u["output"].strip()) for u in usable]
    assert {r.source for r in recs} == {"chatdoctor/genmedgpt_5k"}
    assert {r.instruction for r in recs} == {INSTRUCTION}
    assert len({r.id for r in recs}) == len(recs)

    first = recs[0]
    assert first.input == (
        "Doctor, I have been experiencing sudden and frequent panic attacks. I don't know what to do."
    )
    assert first.output.startswith(
        "Well, based on what you're telling me, it sounds like you may be suffering"
    )
    assert first.output.endswith("psychiatric evaluation and therapy to help manage your symptoms.")
    assert first.id == content_id("chatdoctor/genmedgpt_5k", first.input, first.output)
    assert first.meta == {"file": path.name, "answer": "output"}


def test_healthcaremagic_and_icliniq(tmp_path: Path):
    hcm = write_json(tmp_path / "HealthCareMagic-100k.json", [alpaca("Q1", "A1"), alpaca("Q2", "A2")])
    icl = write_json(
        tmp_path / "iCliniq.json",
        [{"input": "Q3", "answer_icliniq": "doctor", "answer_chatgpt": "gpt", "answer_chatdoctor": "bot"}],
    )
    recs = records(run(hcm, icl))
    assert [(r.source, r.instruction, r.input, r.output) for r in recs] == [
        ("chatdoctor/healthcaremagic_100k", INSTRUCTION, "Q1", "A1"),
        ("chatdoctor/healthcaremagic_100k", INSTRUCTION, "Q2", "A2"),
        ("chatdoctor/icliniq_10k", INSTRUCTION, "Q3", "doctor"),
    ]
    assert recs[2].meta == {"file": "iCliniq.json", "answer": "answer_icliniq"}
    (chatgpt,) = records(run(icl, icliniq_answer="chatgpt"))
    assert chatgpt.output == "gpt"


def test_variant_option_and_unknown_name(tmp_path: Path):
    path = write_json(tmp_path / "export.json", [alpaca()])
    with pytest.raises(InputError) as err:
        run(path)
    assert "variant" in err.value.message and str(path) in str(err.value)
    (rec,) = run(path, variant="healthcaremagic_100k")
    assert rec.source == "chatdoctor/healthcaremagic_100k"
    # iCliniq records are recognised by their keys whatever the file is called.
    icl = write_json(tmp_path / "other.json", [{"input": "Q", "answer_icliniq": "A"}])
    (rec,) = run(icl)
    assert rec.source == "chatdoctor/icliniq_10k"


def test_json_lines_copy(tmp_path: Path):
    path = tmp_path / "HealthCareMagic-100k.jsonl"
    path.write_text(
        "\n".join(json.dumps(alpaca(f"Q{i}", f"A{i}")) for i in range(3)) + "\n", encoding="utf-8"
    )
    recs = records(run(path))
    assert [r.input for r in recs] == ["Q0", "Q1", "Q2"]


def test_wrong_types_missing_keys_and_empty_fields(tmp_path: Path):
    path = write_json(
        tmp_path / "chatdoctor5k.json",
        [
            alpaca(),
            {"instruction": INSTRUCTION, "input": "Q", "output": ["a", "list"]},
            {"instruction": INSTRUCTION, "input": "Q"},
            "just a string",
            {"instruction": INSTRUCTION, "input": 12, "output": "A"},
            alpaca(question="  "),
            alpaca(answer=""),
            {"input": "Q", "answer_icliniq": None, "answer_chatgpt": "x", "answer_chatdoctor": "y"},
            alpaca("Q with NUL \x00", "A"),
        ],
    )
    items = run(path)
    assert [it.reason if isinstance(it, Drop) else "record" for it in items] == [
        "record",
        "invalid_record",
        "missing_field",
        "invalid_record",
        "invalid_record",
        "empty_input",
        "empty_output",
        "invalid_record",
        "invalid_record",
    ]
    assert items[1].where == f"{path} (record 1)"
    assert items[1].malformed and "output: expected a string, got list" in items[1].detail
    assert "'output'" in items[2].detail and items[2].malformed
    assert items[3].where == f"{path} (record 3)"
    assert "answer_icliniq: expected a string, got null" in items[7].detail
    assert not items[5].malformed and not items[6].malformed


def test_ten_megabyte_field(tmp_path: Path):
    path = write_json(tmp_path / "HealthCareMagic-100k.json", [alpaca(answer="y" * 10_000_000), alpaca()])
    items = run(path)
    assert isinstance(items[0], Drop) and items[0].reason == "too_long_output"
    assert items[0].where == f"{path} (record 0)"
    assert isinstance(items[1], Record)


def test_truncated_json(tmp_path: Path, raw_fixtures: Path):
    data = (raw_fixtures / FIXTURE).read_bytes()
    path = tmp_path / "chatdoctor5k.json"
    path.write_bytes(data[: len(data) // 2])
    seen = []
    with pytest.raises(InputError) as err:
        for it in get("chatdoctor").load([path], ChatDoctorOptions()):
            seen.append(it)
    assert str(path) in str(err.value) and f"record {len(seen) - 1}" in err.value.message
    assert 50 < len(seen) < 150


def test_invalid_utf8(tmp_path: Path):
    path = write_json(tmp_path / "chatdoctor5k.json", [alpaca(), alpaca("second", "B")])
    path.write_bytes(path.read_bytes().replace(b"second", b"sec\xff\xfeond"))
    with pytest.raises(InputError) as err:
        run(path)
    assert str(path) in str(err.value) and "record 0" in err.value.message


def test_example_files_load(examples_dir: Path):
    folder = examples_dir / "chatdoctor"
    items = run(folder / "HealthCareMagic-100k.json", folder / "iCliniq.json")
    recs = records(items)
    assert Counter(r.source for r in recs) == Counter(
        {"chatdoctor/healthcaremagic_100k": 7, "chatdoctor/icliniq_10k": 5}
    )
    assert Counter(d.reason for d in drops(items)) == Counter({"empty_input": 1, "empty_output": 2})
    assert len({r.id for r in recs}) == len(recs)
