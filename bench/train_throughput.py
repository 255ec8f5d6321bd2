"""Training speed: medAlpaca's recipe against meadow's, on the same examples, in one run.

medAlpaca's recipe, as its train.py really runs (rewritten only where today's transformers
refuse the old arguments): the whole prompt + answer tokenized with truncation at max length,
EOS appended, labels on every token (``train_on_inputs`` True), ``DataCollatorForSeq2Seq``
left-padding each batch to its longest example (to a multiple of 8), plain ``Trainer``.

meadow's recipe: ``meadow train --packing True --train_on_inputs False``, through
meadow.train.trainer.train itself: each batch's examples concatenated into one row without
padding, loss (and logits) only on the answer tokens.

Both: the embedded SmolLM2-135M in float32 on the CPU, LoRA r=8/alpha 16/dropout 0.1 on
q_proj,v_proj, batch 8 (no accumulation), max length 256, one epoch over the same records in
the same seeded order, no evaluation or checkpoint. Every run is a fresh child process (so its
peak RSS is its own); the two recipes alternate, ``--repeats`` times, and the ratios are taken
of the medians. Effective tokens (prompt + answer, no padding) and answer tokens are counted
once, from the same tokenization, so tokens/s ratios equal epoch-time ratios.

    python bench/train_throughput.py                  # 96 records, 3 repeats
    python bench/train_throughput.py --records 200 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "fixtures" / "raw" / "wikidoc" / "medical_meadow_small.first200.json"
LORA = {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "lora_target_modules": ["q_proj", "v_proj"]}
RECIPES = ("medalpaca", "meadow")


def records(path: Path, n: int) -> list[dict[str, str]]:
    from meadow.train.data import load_records

    return load_records(path)[:n]


def run_medalpaca(data: Path, n: int, batch: int, max_length: int, seed: int) -> dict:
    """medAlpaca's train.py data pipeline and Trainer set-up, LoRA in float32 on the CPU."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from meadow.models import resolve_model
    from meadow.train.prompt import load_template

    template = load_template()
    resolved = resolve_model(None)
    tokenizer = resolved.load_tokenizer()
    tokenizer.pad_token_id = 0  # medAlpaca: "unk. we want this to be different from the eos token"
    tokenizer.padding_side = "left"

    def tokenize(record: dict[str, str]) -> dict[str, list[int]]:
        prompt = template.render(record["instruction"], record["input"]) + record["output"]
        result = tokenizer(prompt, truncation=True, max_length=max_length, padding=False)
        if result["input_ids"][-1] != tokenizer.eos_token_id and len(result["input_ids"]) < max_length:
            result["input_ids"].append(tokenizer.eos_token_id)
            result["attention_mask"].append(1)
        result["labels"] = result["input_ids"].copy()
        return dict(result)

    examples = [tokenize(r) for r in records(data, n)]
    model = resolved.load_model(dtype=torch.float32)
    model.config.use_cache = False
    model = get_peft_model(
        model,
        LoraConfig(
            r=LORA["lora_r"],
            lora_alpha=LORA["lora_alpha"],
            target_modules=LORA["lora_target_modules"],
            lora_dropout=LORA["lora_dropout"],
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=1,
            num_train_epochs=1,
            learning_rate=2e-5,
            warmup_steps=100,
            logging_steps=10_000,
            optim="adamw_torch",
            save_strategy="no",
            eval_strategy="no",
            report_to="none",
            use_cpu=True,
            dataloader_pin_memory=False,
            seed=seed,
        )
        collate = DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8, return_tensors="pt", padding=True)
        trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=collate)
        # the padding its batches carry, in the order the Trainer draws them
        padded = sum(b["input_ids"].numel() for b in trainer.get_train_dataloader())
        output = trainer.train()
    return {"train_runtime": output.metrics["train_runtime"], "steps": output.global_step, "padded": padded}


def run_meadow(data: Path, n: int, batch: int, max_length: int, seed: int) -> dict:
    from meadow.train.config import load_config
    from meadow.train.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "records.json"
        subset.write_text(json.dumps(records(data, n)))
        config = load_config(
            data_path=str(subset),
            output_dir=str(Path(tmp) / "out"),
            train_in_8bit=False,
            fp16=False,
            use_lora=True,
            packing=True,
            train_on_inputs=False,
            per_device_batch_size=batch,
            global_batch_size=batch,
            model_max_length=max_length,
            num_epochs=1,
            val_set_size=0,
            logging_steps=10_000,
            eval_steps=10_000,
            seed=seed,
            **LORA,
        )
        result = train(config)
    return {"train_runtime": result.metrics["train_runtime"], "steps": result.global_step}


def token_counts(data: Path, n: int, max_length: int) -> dict[str, int]:
    """Effective (non-pad) and answer tokens of the epoch, from one tokenization."""
    from meadow.models import resolve_model
    from meadow.train.data import IGNORE, tokenize
    from meadow.train.prompt import load_template

    tokenizer = resolve_model(None).load_tokenizer()
    ex = tokenize(
        records(data, n), tokenizer, load_template(), model_max_length=max_length, train_on_inputs=False
    )
    answer = sum(sum(1 for label in e["labels"] if label != IGNORE) for e in ex.items)
    return {"examples": len(ex), "tokens": ex.stats["tokens"], "answer_tokens": answer}


def child(args: argparse.Namespace) -> None:
    run = run_medalpaca if args.child == "medalpaca" else run_meadow
    started = time.perf_counter()
    out = run(args.data, args.records, args.batch, args.max_length, args.seed)
    out["wall"] = time.perf_counter() - started
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=None, help="medAlpaca-format JSON (default: the fixture)"
    )
    parser.add_argument("--records", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", choices=RECIPES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data is None:
        if not FIXTURE.is_file():
            sys.exit(f"no --data given and the fixture {FIXTURE} is absent")
        args.data = FIXTURE
    if args.child:
        child(args)
        return

    counts = token_counts(args.data, args.records, args.max_length)
    print(
        f"{counts['examples']} examples from {args.data.name}: {counts['tokens']:,} tokens "
        f"({counts['answer_tokens']:,} answer tokens), batch {args.batch}, max length {args.max_length}"
    )
    runs: dict[str, list[dict]] = {r: [] for r in RECIPES}
    for i in range(args.repeats):
        order = RECIPES if i % 2 == 0 else RECIPES[::-1]
        for recipe in order:
            cmd = [sys.executable, __file__, "--child", recipe, "--data", str(args.data)]
            cmd += ["--records", str(args.records), "--batch", str(args.batch)]
            cmd += ["--max-length", str(args.max_length), "--seed", str(args.seed)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                sys.exit(f"{recipe} run failed:\n{proc.stderr[-3000:]}")
            result = json.loads(lines[-1].removeprefix("RESULT "))
            runs[recipe].append(result)
            print(
                f"  repeat {i + 1} {recipe:9s}: epoch {result['train_runtime']:7.1f} s, "
                f"{result['steps']} steps, peak RSS {result['peak_rss_mib']:.0f} MiB",
                flush=True,
            )

    padded = runs["medalpaca"][0]["padded"]
    print(f"medAlpaca's batches: {padded:,} token slots, {1 - counts['tokens'] / padded:.1%} padding")
    print()
    print("| recipe | epoch (median) | effective tokens/s | answer tokens/s | peak RSS (max) |")
    print("|---|---:|---:|---:|---:|")
    summary = {}
    for recipe in RECIPES:
        t = statistics.median(r["train_runtime"] for r in runs[recipe])
        rss = max(r["peak_rss_mib"] for r in runs[recipe])
        summary[recipe] = (t, rss)
        print(
            f"| {recipe} | {t:.1f} s | {counts['tokens'] / t:,.0f} | {counts['answer_tokens'] / t:,.0f} "
            f"| {rss:.0f} MiB |"
        )
    (t0, m0), (t1, m1) = summary["medalpaca"], summary["meadow"]
    per_repeat = [
        a["train_runtime"] / b["train_runtime"]
        for a, b in zip(runs["medalpaca"], runs["meadow"], strict=True)
    ]
    print()
    print(
        f"meadow epoch / medAlpaca epoch: {t1 / t0:.2f}x (speed-up {t0 / t1:.2f}x; per repeat "
        f"{', '.join(f'{r:.2f}x' for r in per_repeat)}); peak RSS {m1 / m0:.2f}x"
    )
    print(f"goal: epoch <= 0.67x at no more memory: {'met' if t1 / t0 <= 0.67 and m1 <= m0 else 'NOT met'}")


if __name__ == "__main__":
    main()
