"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def raw_fixtures() -> Path:
    """The real upstream sample files: ``../shared/fixtures/raw`` beside the checkout.

    Set MEADOW_FIXTURES to point elsewhere. Absent: the test is skipped with the reason,
    except under CI=true, where the fixtures must be there and a missing folder fails.
    """
    root = Path(os.environ.get("MEADOW_FIXTURES", REPO.parent / "shared" / "fixtures" / "raw"))
    if not root.is_dir():
        message = f"real upstream fixtures not found at {root} (set MEADOW_FIXTURES)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires them")
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The project's own small sample files, in each source's raw format."""
    return REPO / "examples"


@pytest.fixture(scope="session")
def meadow_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MEADOW_CACHE for the session, shared by every test that loads the embedded model: the
    SmolLM2 conversion (~20 s) happens once per test run. MEADOW_TEST_CACHE keeps it across runs."""
    root = Path(os.environ.get("MEADOW_TEST_CACHE") or tmp_path_factory.getbasetemp() / "meadow-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEADOW_CACHE", str(root))
        yield root


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """recipes/demo.yaml built once per session (its paths are relative to the repository)."""
    from meadow.build import build

    out = tmp_path_factory.mktemp("demo-build")
    return build(REPO / "recipes" / "demo.yaml", output_dir=out, base_dir=REPO, progress=False).out_dir


@pytest.fixture(scope="session")
def tiny_model(demo_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer Llama (with q_proj/v_proj for LoRA) and a word-level tokenizer over the demo build's
    prompts: a real local model that trains in a second."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from meadow.train.prompt import load_template

    template = load_template()
    records = json.loads((demo_build / "merged_medical_meadow.json").read_text())
    texts = [template.render(r["instruction"], r["input"], r["output"]) for r in records]
    folder = tmp_path_factory.mktemp("models") / "tiny"
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<unk>", "<eos>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        eos_token_id=1,
        pad_token_id=1,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
