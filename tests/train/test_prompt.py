import json

import pytest

from meadow.errors import MeadowError
from meadow.train.prompt import load_template


def test_medalpaca_template_renders_like_medalpaca():
    t = load_template()
    prompt = t.render("Provide a short answer to this medical question.", "What is X?", "X is Y.")
    assert prompt == (
        "Below is an instruction that describes a task, paired with an input that provides further "
        "context. Write a response that appropriately completes the request."
        "\n\n### Instruction:\nProvide a short answer to this medical question."
        "\n\n### Input:\nWhat is X?"
        "\n\n### Response:\nX is Y."
    )
    assert t.render("Q", "").endswith("### Response:\n")
    assert t.response(prompt) == "X is Y."
    with pytest.raises(ValueError):
        t.render()


def test_template_from_path_and_errors(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(
        json.dumps(
            {"primer": "P", "instruction": "I:", "input": "N:", "output": "O:", "response_split": "O:"}
        )
    )
    assert load_template(str(p)).render("a", "b", "c") == "PI:aN:bO:c"
    p.write_text(json.dumps({"primer": "P"}))
    with pytest.raises(MeadowError, match="instruction: Field required"):
        load_template(str(p))
    p.write_text("{")
    with pytest.raises(MeadowError, match=r"t\.json:1: invalid JSON"):
        load_template(str(p))
    with pytest.raises(MeadowError, match="not found"):
        load_template("nonexistent")
