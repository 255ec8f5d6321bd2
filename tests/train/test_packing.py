"""--packing: padding-free rows in which attention and loss never cross example boundaries."""

import json

import pytest
import torch

from meadow.models import resolve_model
from meadow.train.config import TrainConfig, load_config
from meadow.train.data import IGNORE, load_records, tokenize
from meadow.train.prompt import load_template
from meadow.train.trainer import collator, train


@pytest.fixture(scope="module")
def base(meadow_cache):
    resolved = resolve_model(None)
    return resolved.load_tokenizer(), resolved.load_model(dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def packed_attention(meadow_cache):
    """The model as --packing loads it: attention over each example's span only."""
    from meadow.train import attention

    resolved = resolve_model(None)
    return resolved.load_model(dtype=torch.float32, attn_implementation=attention.register()).eval()


@pytest.mark.parametrize("attention", ["sdpa", "packed"])
@pytest.mark.parametrize("train_on_inputs", [True, False])
def test_packed_row_equals_separate_examples(base, packed_attention, demo_build, train_on_inputs, attention):
    tokenizer, model = base
    if attention == "packed":
        model = packed_attention
        assert model.config._attn_implementation == "meadow_packed_sdpa"
    records = load_records(demo_build)[:3]
    examples = tokenize(
        records, tokenizer, load_template(), model_max_length=96, train_on_inputs=train_on_inputs
    ).items
    lengths = [len(e["input_ids"]) for e in examples]
    packed = collator(TrainConfig(packing=True), tokenizer)(examples)
    assert "attention_mask" not in packed and packed["input_ids"].shape == (1, sum(lengths))
    assert packed["position_ids"][0].tolist() == [i for n in lengths for i in range(n)]
    starts = [sum(lengths[:k]) for k in range(len(lengths))]
    # each example keeps its labels (completion-only masking included), except the first, so that
    # the previous example's last token is never trained to predict the next example
    expected = [label for e in examples for label in [IGNORE, *e["labels"][1:]]]
    assert packed["labels"][0].tolist() == expected
    assert all(packed["labels"][0, s].item() == IGNORE for s in starts)

    with torch.inference_mode():
        # no cache, as in training (use_cache False): transformers builds the packed mask then
        packed_out = model(**packed, use_cache=False)
        for example, start, n in zip(examples, starts, lengths, strict=True):
            alone = model(input_ids=torch.tensor([example["input_ids"]])).logits[0]
            torch.testing.assert_close(packed_out.logits[0, start : start + n], alone, atol=2e-4, rtol=1e-4)
        padded = collator(TrainConfig(), tokenizer)(examples)
        assert padded["input_ids"].shape[0] == 3
        torch.testing.assert_close(
            packed_out.loss, model(**padded, use_cache=False).loss, atol=1e-4, rtol=1e-4
        )


def test_packing_trains(meadow_cache, few_records, tmp_path):
    config = load_config(
        data_path=str(few_records),
        output_dir=str(tmp_path / "out"),
        train_in_8bit=False,
        fp16=False,
        packing=True,
        per_device_batch_size=3,
        global_batch_size=3,
        model_max_length=64,
        max_steps=1,
        val_set_size=0,
        logging_steps=1,
    )
    result = train(config)
    assert result.global_step == 1 and result.metrics["train_loss"] > 0
    assert json.loads((tmp_path / "out" / "meadow_train.json").read_text())["packing"] is True


@pytest.mark.parametrize("packing", [False, True])
@pytest.mark.parametrize("train_on_inputs", [True, False])
def test_loss_on_kept_logits_equals_the_full_loss(base, demo_build, tmp_path, packing, train_on_inputs):
    """Logits only where a label is: the same loss and gradients as transformers' default."""
    from transformers import Trainer, TrainingArguments

    from meadow.train.trainer import trainer_class

    tokenizer, model = base
    examples = tokenize(
        load_records(demo_build)[:4],
        tokenizer,
        load_template(),
        model_max_length=96,
        train_on_inputs=train_on_inputs,
    ).items
    batch = collator(TrainConfig(packing=packing), tokenizer)(examples)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    weight = model.model.layers[3].self_attn.q_proj.weight
    losses, grads = [], []
    for cls in (Trainer, trainer_class()):
        trainer = cls(model=model, args=args)
        for items in (None, int(batch["labels"][:, 1:].ne(IGNORE).sum()) + 5):
            model.zero_grad()
            with torch.enable_grad():
                loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=items)
                loss.backward()
            losses.append(loss.detach())
            grads.append(weight.grad.clone())
    with torch.inference_mode():
        _, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)
    wanted = batch["labels"][:, 1:].ne(IGNORE).any(dim=0).sum()
    assert outputs.logits.shape[1] == wanted < batch["input_ids"].shape[1]
    for mine, theirs in zip(losses[2:], losses[:2], strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)
    for mine, theirs in zip(grads[2:], grads[:2], strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-6, rtol=1e-4)
