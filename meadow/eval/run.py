"""``meadow eval``: load benchmarks and a model, score every question, write the results.

Output, in ``output_dir``:

- ``questions.jsonl``: one line per question: id, benchmark, prompt hash, the answer, the chosen
  letter (``choice``, and ``choice_norm`` for acc_norm), ``correct``/``correct_norm`` and each
  option's log-probability; in generate mode the greedy answer (``generation``) and the letter
  read from it (``choice``, null when none could be read: counted as wrong, and as ``no_answer``);
- ``results.json``: model (name, weights sha256), settings, per benchmark n, acc and acc_norm with
  95% Wilson intervals, the questions not scored by reason (``removed``: USMLE image questions,
  slips of the published files; also all together, ``benchmark:reason`` -> count), input file
  hashes and in loglik mode how the options were read (``loglik``: prompts shared, options given a
  full pass and why, prompt/option token merges, tokens read);
- ``results.md``: the markdown table (rows: models, columns: benchmarks), the questions not scored
  below it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from meadow.benchmarks import Question, load_benchmark
from meadow.errors import MeadowError
from meadow.eval import generate, loglik
from meadow.eval.extract import extract_letter
from meadow.eval.prompts import PromptBuilder, Style, answer_text, chat_messages, pick_shots, prompt_hash
from meadow.eval.results import RESULTS_FORMAT, markdown_table, removed_by_benchmark, summarize, write_jsonl
from meadow.eval.server import Server
from meadow.io import file_info
from meadow.models import ResolvedModel, model_libraries, resolve_model

log = logging.getLogger(__name__)

Mode = Literal["loglik", "generate"]


@dataclass
class EvalConfig:
    benchmarks: list[str]
    """``KIND:PATH_OR_GLOB`` specs, e.g. ``mmlu:data/raw/mmlu_test/data/test/*.csv``."""
    output_dir: Path
    model: str | None = None
    """Hub id, local directory, LoRA adapter directory, .gguf file, or None for the embedded SmolLM2."""
    mode: Mode = "loglik"
    prompt: Style = "medalpaca"
    shots: int = 0
    fewshot_from: list[str] = field(default_factory=list)
    """Specs whose questions serve as few-shot examples (default: the evaluated questions, never
    a question as its own example)."""
    limit: int | None = None
    """At most this many questions per benchmark (the first ones, in file order)."""
    batch_size: int = 8
    prefix_cache: bool = True
    """loglik mode: read each question's prompt once, its options packed after it (False: one
    full sequence per option, as lm-evaluation-harness runs them; same scores)."""
    max_new_tokens: int = 32
    """generate mode: tokens per answer (greedy decoding)."""
    allow_download: bool = False
    progress: bool = True
    base_url: str | None = None
    """generate mode through an OpenAI-compatible server: its URL (``model`` is the server's model
    name; ``batch_size`` requests in flight)."""
    api_key_env: str = "OPENAI_API_KEY"
    strict: bool = False
    """A malformed benchmark question (a USMLE answer key naming no option...) is an error instead
    of a question left out of scoring, counted and warned about."""


@dataclass
class LoadedModel:
    resolved: ResolvedModel
    model: Any
    tokenizer: Any
    base: ResolvedModel | None = None
    """For a LoRA adapter: the base model it was loaded on."""


def load_model(name: str | None, *, allow_download: bool = False) -> LoadedModel:
    """The model and tokenizer ``name`` means; a directory with ``adapter_config.json`` is a peft
    adapter, loaded on its ``base_model_name_or_path``."""
    with model_libraries():  # no bitsandbytes kernel warning or transformers deprecation noise
        return _load_model(name, allow_download=allow_download)


def _load_model(name: str | None, *, allow_download: bool) -> LoadedModel:
    import torch

    resolved = resolve_model(name, allow_download=allow_download)
    dtype = torch.float32 if not torch.cuda.is_available() else torch.bfloat16
    device = "cuda" if torch.cuda.is_available() else "cpu"
    adapter_config = resolved.path / "adapter_config.json"
    if adapter_config.is_file() and not (resolved.path / "config.json").is_file():
        try:
            base_name = json.loads(adapter_config.read_text())["base_model_name_or_path"]
        except (ValueError, KeyError, OSError) as err:
            raise MeadowError(f"{adapter_config}: no base_model_name_or_path ({err})") from None
        base = resolve_model(base_name, allow_download=allow_download)
        from peft import PeftModel

        model = PeftModel.from_pretrained(base.load_model(dtype=dtype), resolved.path)
        has_tokenizer = (resolved.path / "tokenizer_config.json").is_file()
        tokenizer = (resolved if has_tokenizer else base).load_tokenizer()
        return LoadedModel(resolved, model.to(device).eval(), tokenizer, base=base)
    model = resolved.load_model(dtype=dtype).to(device).eval()
    return LoadedModel(resolved, model, resolved.load_tokenizer())


def load_questions(cfg: EvalConfig) -> tuple[list[Question], list[Question], Counter[str], list[Path]]:
    """Questions to evaluate (limited), the few-shot pool, removed counts and the input files."""
    questions: list[Question] = []
    removed: Counter[str] = Counter()
    files: list[Path] = []
    per_benchmark: Counter[str] = Counter()
    for spec in cfg.benchmarks:
        loaded = load_benchmark(spec, strict=cfg.strict)
        removed.update(loaded.removed)
        files.extend(loaded.files)
        for q in loaded.questions:
            if cfg.limit is not None and per_benchmark[q.benchmark] >= cfg.limit:
                continue
            per_benchmark[q.benchmark] += 1
            questions.append(q)
    pool = questions
    if cfg.fewshot_from:
        pool = [q for spec in cfg.fewshot_from for q in load_benchmark(spec, strict=cfg.strict).questions]
    return questions, pool, removed, files


def build_prompts(
    lm: LoadedModel, questions: list[Question], pool: list[Question], cfg: EvalConfig
) -> list[str]:
    builder = PromptBuilder(style=cfg.prompt, tokenizer=lm.tokenizer)
    return [builder.build(q, pick_shots(q, pool, cfg.shots)) for q in questions]


def generate_questions(
    lm: LoadedModel | Server, questions: list[Question], pool: list[Question], cfg: EvalConfig
) -> list[dict[str, Any]]:
    """generate mode: one row per question with the greedy answer and the letter read from it."""
    if isinstance(lm, Server):
        if cfg.prompt == "chat":
            conversations = [chat_messages(q, pick_shots(q, pool, cfg.shots)) for q in questions]
        else:  # the medAlpaca prompt as one user message
            builder = PromptBuilder("medalpaca")
            conversations = [
                [{"role": "user", "content": builder.build(q, pick_shots(q, pool, cfg.shots))}]
                for q in questions
            ]
        prompts = [json.dumps(c, ensure_ascii=False) for c in conversations]
        texts = lm.generate(conversations, max_tokens=cfg.max_new_tokens, progress=cfg.progress)
    else:
        prompts = build_prompts(lm, questions, pool, cfg)
        texts = generate.greedy(
            lm.model,
            lm.tokenizer,
            prompts,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
            progress=cfg.progress,
        )
    return [
        _row(q, prompt, extract_letter(text, q.options), generation=text)
        for prompt, q, text in zip(prompts, questions, texts, strict=True)
    ]


def _row(q: Question, prompt: str, choice: str | None, **extra: Any) -> dict[str, Any]:
    """One line of questions.jsonl: the fields both modes share, then the mode's own, then meta."""
    return {
        "id": q.id,
        "benchmark": q.benchmark,
        "prompt_sha256": prompt_hash(prompt),
        "answer": q.answer,
        "choice": choice,
        "correct": choice == q.answer,
        **extra,
        "meta": q.meta,
    }


def score_questions(
    lm: LoadedModel, questions: list[Question], pool: list[Question], cfg: EvalConfig
) -> tuple[list[dict[str, Any]], loglik.ScoreStats]:
    """loglik mode: one result row per question (see the module docstring), and what the scoring read."""
    prompts = build_prompts(lm, questions, pool, cfg)
    requests = [
        (p, answer_text(q, letter)) for p, q in zip(prompts, questions, strict=True) for letter in q.options
    ]
    scores = loglik.score(
        lm.model,
        lm.tokenizer,
        requests,
        batch_size=cfg.batch_size,
        prefix_cache=cfg.prefix_cache,
        progress=cfg.progress,
    )
    rows = []
    at = 0
    for prompt, q in zip(prompts, questions, strict=True):
        letters = list(q.options)
        mine = scores.scored[at : at + len(letters)]
        at += len(letters)
        logprobs = [s.logprob for s in mine]
        lengths = [len(answer_text(q, letter)) for letter in letters]
        choice = letters[loglik.choose(logprobs)]
        choice_norm = letters[loglik.choose(logprobs, lengths)]
        rows.append(
            _row(
                q,
                prompt,
                choice,
                choice_norm=choice_norm,
                correct_norm=choice_norm == q.answer,
                logprobs=dict(zip(letters, logprobs, strict=True)),
            )
        )
    return rows, scores.stats


def evaluate(cfg: EvalConfig, lm: LoadedModel | None = None) -> dict[str, Any]:
    """Run the evaluation and write questions.jsonl, results.json and results.md; returns the results."""
    if cfg.shots < 0:
        raise MeadowError("--shots must be 0 or more")
    if cfg.limit is not None and cfg.limit < 1:
        raise MeadowError("--limit must be at least 1")
    if cfg.mode not in ("loglik", "generate"):
        raise MeadowError(f"mode {cfg.mode!r}: expected loglik or generate")
    if cfg.base_url and (cfg.mode != "generate" or not cfg.model):
        raise MeadowError("a server (--base-url) needs --mode generate and --model (the server's model name)")
    questions, pool, removed, files = load_questions(cfg)
    backend: LoadedModel | Server
    if cfg.base_url:
        assert cfg.model is not None
        backend = Server(cfg.base_url, cfg.model, api_key_env=cfg.api_key_env, concurrency=cfg.batch_size)
        model_info = {"name": cfg.model, "identity": backend.identity, "sha256": None, "base": None}
    else:
        backend = lm or load_model(cfg.model, allow_download=cfg.allow_download)
        model_info = {
            "name": backend.resolved.name,
            "identity": backend.resolved.identity,
            "sha256": backend.resolved.sha256,
            "base": backend.base.identity if backend.base else None,
        }
    start = time.perf_counter()
    scoring: dict[str, Any] | None = None
    if cfg.mode == "loglik":
        assert isinstance(backend, LoadedModel)
        rows, stats = score_questions(backend, questions, pool, cfg)
        scoring = stats.as_dict()
        metrics = {"acc": "correct", "acc_norm": "correct_norm"}
    else:
        rows = generate_questions(backend, questions, pool, cfg)
        metrics = {"acc": "correct"}
    seconds = time.perf_counter() - start
    summary = summarize(({**r, **{m: r[k] for m, k in metrics.items()}} for r in rows), list(metrics))
    if cfg.mode == "generate":
        for name, entry in summary.items():
            entry["no_answer"] = sum(r["choice"] is None for r in rows if r["benchmark"] == name)
    for name, reasons in removed_by_benchmark(dict(removed)).items():
        if name in summary:
            summary[name]["removed"] = reasons
    results = {
        "format": RESULTS_FORMAT,
        "model": model_info,
        "config": {
            "mode": cfg.mode,
            "prompt": cfg.prompt,
            "shots": cfg.shots,
            "fewshot_from": cfg.fewshot_from,
            "limit": cfg.limit,
            "batch_size": cfg.batch_size,
            "prefix_cache": cfg.prefix_cache if cfg.mode == "loglik" else None,
            "max_new_tokens": cfg.max_new_tokens if cfg.mode == "generate" else None,
            "benchmarks": cfg.benchmarks,
            "strict": cfg.strict,
        },
        "benchmarks": summary,
        "removed": dict(sorted(removed.items())),
        "files": {str(p): file_info(p)["sha256"] for p in files},
        "questions": len(rows),
        "seconds": round(seconds, 3),
        "loglik": scoring,
        "versions": {p: _version(p) for p in ("meadow", "torch", "transformers", "peft")},
    }
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "questions.jsonl", rows)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (out / "results.md").write_text(markdown_table([results]))
    log.info("wrote %d question results to %s", len(rows), out)
    return results


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
