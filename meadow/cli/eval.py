"""`meadow eval` and `generate`: a model scored on benchmarks, or asked an instruction."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from meadow.cli.console import console, fail
from meadow.errors import MeadowError


def eval_(
    results_files: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Argument(help="With --compare: results.json files of earlier runs.", show_default=False),
    ] = None,
    benchmark: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--benchmark",
            "-b",
            help="KIND:PATH_OR_GLOB, KIND one of mmlu, medqa, usmle, pubmedqa (repeatable), "
            "e.g. mmlu:data/raw/mmlu_test/data/test/*.csv, usmle:data/raw/usmle/step1.json.",
        ),
    ] = None,
    model: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--model", "-m", help="Hub id, model or LoRA adapter directory, .gguf; default: embedded SmolLM2."
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="loglik (option likelihoods) or generate (greedy answer).")
    ] = "loglik",
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="generate mode: tokens per answer.")
    ] = 32,
    prompt: Annotated[
        str, typer.Option("--prompt", help="medalpaca or chat (the model's template).")
    ] = "medalpaca",
    shots: Annotated[int, typer.Option("--shots", help="Few-shot examples per question.")] = 0,
    fewshot_from: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--fewshot-from", help="KIND:PATH_OR_GLOB of few-shot examples (e.g. MMLU dev)."),
    ] = None,
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--limit", help="At most this many questions per benchmark (the first ones)."),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            help="Sequences per forward pass (loglik with the prefix cache: a prompt and its options).",
        ),
    ] = 8,
    prefix_cache: Annotated[
        bool,
        typer.Option(
            "--prefix-cache/--no-prefix-cache",
            help="loglik mode: read each prompt once, its options packed after it; "
            "--no-prefix-cache: one full pass per option, as lm-evaluation-harness (same scores).",
        ),
    ] = True,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where results go.")] = Path(
        "data/eval/run"
    ),
    allow_download: Annotated[
        bool, typer.Option("--allow-download", help="Download a Hub model missing from the cache.")
    ] = False,
    base_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--base-url", help="Generate through an OpenAI-compatible server; --model is its model name."
        ),
    ] = None,
    api_key_env: Annotated[
        str, typer.Option("--api-key-env", help="The variable holding the server's key.")
    ] = "OPENAI_API_KEY",
    compare: Annotated[
        bool, typer.Option("--compare", help="Print the table of the RESULTS_FILES given; evaluate nothing.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Fail on a malformed benchmark question instead of leaving it out of scoring."
        ),
    ] = False,
) -> None:
    """Score a model on multiple-choice benchmarks (MMLU medical, MedQA, USMLE, PubMedQA).

    Log-likelihood mode, as lm-evaluation-harness: each option's text is
    scored as a continuation of the prompt; acc takes the most likely option,
    acc_norm the most likely per character. Deterministic. Each prompt is read
    once and its options packed after it (--no-prefix-cache: one pass per
    option, as the harness runs them; the same scores).

    Questions a published file broke (USMLE items with merged or missing
    options, image questions) are left out of scoring and counted by reason;
    --strict stops on them instead.

    Generate mode, as medAlpaca's eval: greedy decoding, then the answer
    letter is read from the text ("The answer is (C)", "C.", "Option C: ...");
    no letter counts as wrong.

    Writes OUTPUT_DIR/questions.jsonl (one line per question), results.json
    (n, accuracy and 95% Wilson interval per benchmark) and results.md.

    `meadow eval --compare a.json b.json` prints the table of several runs.
    """
    from meadow.eval.results import load_results, markdown_table

    try:
        if compare:
            if not results_files:
                raise MeadowError("--compare needs one or more results.json files")
            runs = [load_results(p) for p in results_files]
            typer.echo(markdown_table(runs, "acc"), nl=False)
            return
        if results_files:
            raise MeadowError("results files are only read with --compare")
        if not benchmark:
            raise MeadowError("name at least one --benchmark KIND:PATH_OR_GLOB")
        if mode not in ("loglik", "generate"):
            raise MeadowError(f"--mode {mode}: expected loglik or generate")
        if prompt not in ("medalpaca", "chat"):
            raise MeadowError(f"--prompt {prompt}: expected medalpaca or chat")
        from meadow.eval.run import EvalConfig, evaluate

        cfg = EvalConfig(
            benchmarks=benchmark,
            output_dir=output_dir,
            model=model,
            prompt=prompt,  # type: ignore[arg-type]
            shots=shots,
            fewshot_from=fewshot_from or [],
            limit=limit,
            batch_size=batch_size,
            prefix_cache=prefix_cache,
            mode=mode,  # type: ignore[arg-type]
            max_new_tokens=max_new_tokens,
            allow_download=allow_download,
            progress=not quiet,
            base_url=base_url,
            api_key_env=api_key_env,
            strict=strict,
        )
        results = evaluate(cfg)
    except MeadowError as err:
        fail(err)
    typer.echo(markdown_table([results], "acc"), nl=False)
    for reason, count in results["removed"].items():
        console.print(f"removed {count} question(s): {reason}", highlight=False)
    console.print(
        f"{results['questions']} questions in {results['seconds']:.1f} s; wrote {output_dir}", highlight=False
    )


def generate(
    instruction: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="The instruction; omit it for an interactive chat (empty line or Ctrl-D ends)."),
    ] = None,
    input_text: Annotated[
        str, typer.Option("--input", "-i", help="The input (context) of a one-shot instruction.")
    ] = "",
    model: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--model",
            "-m",
            help="Model directory, Hub id, .gguf, or LoRA adapter directory (loaded on its base model); "
            "default: embedded SmolLM2.",
        ),
    ] = None,
    prompt: Annotated[str, typer.Option("--prompt", help="medalpaca (as training) or chat.")] = "medalpaca",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens per answer at most.")] = 256,
    temperature: Annotated[
        float, typer.Option("--temperature", help="0: greedy, deterministic (default).")
    ] = 0.0,
    allow_download: Annotated[
        bool, typer.Option("--allow-download", help="Download a Hub model missing from the cache.")
    ] = False,
) -> None:
    """Answer an instruction with a model, in the prompt template it was trained with.

    One-shot: `meadow generate "What does the liver do?"`. Without an
    instruction, an interactive chat: each line is an instruction (the chat
    template keeps the history; the medalpaca template is single-turn, as
    medAlpaca's inferer).
    """
    try:
        if prompt not in ("medalpaca", "chat"):
            raise MeadowError(f"--prompt {prompt}: expected medalpaca or chat")
        from meadow.eval.chat import ChatSession
        from meadow.eval.run import load_model

        session = ChatSession(
            load_model(model, allow_download=allow_download),
            style=prompt,  # type: ignore[arg-type]
            max_new_tokens=max_new_tokens,
            temperature=temperature,
        )
        if instruction is not None:
            typer.echo(session.respond(instruction, input_text))
            return
        console.print(f"{session.lm.resolved.identity}: an empty line or Ctrl-D ends", highlight=False)
        while True:
            console.print("> ", end="")
            line = sys.stdin.readline()
            if not line.strip():
                break
            typer.echo(session.respond(line.strip()))
    except MeadowError as err:
        fail(err)
