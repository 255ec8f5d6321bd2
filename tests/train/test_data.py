import json

import pytest

from meadow.errors import MeadowError
from meadow.models import resolve_model
from meadow.train.data import IGNORE, load_records, split, template_length, tokenize
from meadow.train.prompt import load_template


@pytest.fixture(scope="module")
def tokenizer(meadow_cache):
    return resolve_model(None).load_tokenizer()


def test_records_from_a_build_dir_and_a_file(demo_build, few_records):
    records = load_records(demo_build)
    assert len(records) == len(json.loads((demo_build / "merged_medical_meadow.json").read_text()))
    assert set(records[0]) == {"instruction", "input", "output"}
    assert len(load_records(few_records)) == 6


def test_missing_field_names_file_and_record(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps([{"instruction": "i", "input": "", "output": "o"}, {"id": "x7", "instruction": "i"}])
    )
    with pytest.raises(MeadowError, match=r"bad\.json: record 1 \(id x7\): missing field\(s\) input, output"):
        load_records(path)
    path.write_text(json.dumps([{"instruction": "i", "input": None, "output": "o"}]))
    with pytest.raises(MeadowError, match="record 0: field.* input must be strings"):
        load_records(path)
    with pytest.raises(MeadowError, match="no such data file"):
        load_records(tmp_path / "none.json")


def test_split_is_seeded():
    train, val = split(list(range(100)), 0.1)
    assert len(val) == 10 and sorted(train + val) == list(range(100))
    assert split(list(range(100)), 0.1) == (train, val)
    assert len(split(list(range(100)), 7)[1]) == 7
    assert split([1, 2], 0) == ([1, 2], [])
    with pytest.raises(MeadowError, match="leaves no training records"):
        split([1, 2], 2)


RECORD = {"instruction": "Answer the question.", "input": "What carries oxygen?", "output": "Haemoglobin."}


def test_completion_only_masks_every_prompt_token(tokenizer):
    template = load_template()
    (ex,) = tokenize([RECORD], tokenizer, template, model_max_length=256, train_on_inputs=False).items
    prompt_ids = tokenizer(template.render(RECORD["instruction"], RECORD["input"]))["input_ids"]
    n = len(prompt_ids)
    assert ex["input_ids"][:n] == prompt_ids
    assert ex["labels"][:n] == [IGNORE] * n
    assert ex["labels"][n:] == ex["input_ids"][n:]
    assert all(label != IGNORE for label in ex["labels"][n:])
    assert ex["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ex["input_ids"][n:-1]) == RECORD["output"]


def test_train_on_inputs_labels_every_token(tokenizer):
    (ex,) = tokenize([RECORD], tokenizer, load_template(), model_max_length=256, train_on_inputs=True).items
    assert ex["labels"] == ex["input_ids"]
    assert ex["attention_mask"] == [1] * len(ex["input_ids"])
    assert ex["input_ids"][-1] == tokenizer.eos_token_id


def test_truncation_is_counted_never_silent(tokenizer, caplog):
    template = load_template()
    long = dict(RECORD, output="word " * 300)
    n_template = template_length(template, tokenizer)
    examples = tokenize([RECORD, long], tokenizer, template, model_max_length=n_template + 20)
    assert examples.stats["truncated"] == 1 and examples.stats["examples"] == 2
    assert len(examples[1]["input_ids"]) == n_template + 20
    assert "1 of 2 examples are longer than model_max_length" in caplog.text
    # completion-only: a prompt that fills model_max_length leaves nothing to learn: dropped, counted
    wordy = dict(RECORD, input="symptom " * 200)
    examples = tokenize([RECORD, wordy], tokenizer, template, model_max_length=100, train_on_inputs=False)
    assert examples.stats["dropped_no_response"] == 1 and len(examples) == 1
    assert "1 examples dropped" in caplog.text


def test_model_max_length_below_template_length(tokenizer):
    template = load_template()
    n = template_length(template, tokenizer)
    with pytest.raises(MeadowError, match=f"model_max_length {n} is too short: .* alone is {n} tokens"):
        tokenize([RECORD], tokenizer, template, model_max_length=n)
