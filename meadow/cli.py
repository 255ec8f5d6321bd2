"""The `meadow` command line: each subcommand maps to one plain function."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from meadow import __version__
from meadow.errors import MeadowError

app = typer.Typer(
    name="meadow",
    help="Build Medical Meadow (the medAlpaca instruction data) from the raw upstream sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Wide enough for the summary table when stderr is a log file or a pipe (rich assumes 80).
console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meadow {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional on py3.10
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )


def _fail(err: MeadowError) -> None:
    console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command()
def build(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. recipes/demo.yaml.")],
    output_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output-dir", "-o", help="Write OUTPUT_DIR/<name>/, not the recipe's output_dir."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail on the first malformed row instead of counting it.")
    ] = False,
    replay: Annotated[
        bool, typer.Option("--replay", help="Take every LLM answer from the cache; a miss is an error.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary table.")] = False,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--workers",
            "-j",
            min=1,
            help="Read the sources in shards (one per input file) on N local processes; "
            "finished shards survive a failed build for the rerun.",
        ),
    ] = None,
    executor: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--executor",
            help="Where shards are read: local (a process pool of --workers) or ray (a Ray cluster).",
        ),
    ] = None,
    address: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--address", help="Ray cluster for --executor ray: auto (default), ray://HOST:PORT or HOST:PORT."
        ),
    ] = None,
    keep_work: Annotated[
        bool,
        typer.Option(
            "--keep-work", help="Keep the shards in OUTPUT_DIR/.work/<name>/ after a successful build."
        ),
    ] = False,
) -> None:
    """Load every source of RECIPE, validate, rephrase, dedup, subsample and write the build.

    Output: <output_dir>/<name>/ holding merged_medical_meadow.json
    (medAlpaca's format), .parquet, manifest.json and README.md (the card).

    Paths in the recipe are relative to the working directory.

    Records failing the recipe's quality filters are dropped (filter_<name>);
    with benchmarks in the recipe, records holding one of their questions are
    dropped (contaminated) and listed in contamination.jsonl.

    Passages (flashcards, WikiDoc textbook) are rephrased by the recipe's llm backend;
    answers are cached, so an interrupted build resumes where it stopped.

    The previous build is replaced only when the new one is complete.

    With --workers or --executor, the sources are read in shards in parallel
    and merged in file order: the output is byte-identical to a single-process
    build. A rerun after a failed or killed build reuses the finished shards
    whose inputs and settings did not change. Rephrasing is spread over the
    workers too (not with an llm budget), its answers merged into the one
    cache; dedup and subsampling run in this process.
    """
    from meadow.build import build as run_build
    from meadow.schemas.run import run_options

    try:
        options = run_options(
            output_dir=output_dir,
            strict=strict,
            replay=replay,
            progress=not quiet,
            workers=workers,
            executor=executor,
            address=address,
            keep_work=keep_work,
        )
        result = run_build(recipe, options)
    except MeadowError as err:
        _fail(err)
        return
    if not quiet:
        _summary(result.manifest.to_json())
    console.print(f"wrote {result.records:,} records to {result.out_dir}", highlight=False)


def _summary(manifest: dict) -> None:
    near = "near_dedup" in manifest  # the near-dup column only for builds that ran the step
    table = Table(title="meadow build")
    table.add_column("source", overflow="fold", min_width=12)
    for col in ("read", "dropped", "dups", *(["near dups"] if near else []), "unique", "n", "kept", "s"):
        table.add_column(col, justify="right")
    for name, s in manifest["sources"].items():
        table.add_row(
            name,
            f"{s['read']:,}",
            f"{s['dropped_total']:,}",
            f"{s['duplicates']:,}",
            *([f"{s.get('near_duplicates', 0):,}"] if near else []),
            f"{s['unique']:,}",
            str(s["n"]) + (f" ({s['near_dedup_short']:,} short)" if s.get("near_dedup_short") else ""),
            f"{s['sampled']:,}",
            f"{s['seconds']:.1f}",
        )
    t = manifest["totals"]
    table.add_row(
        "total",
        f"{t['read']:,}",
        f"{t['dropped']:,}",
        f"{t['duplicates']:,}",
        *([f"{t.get('near_duplicates', 0):,}"] if near else []),
        f"{t['unique']:,}",
        "",
        f"{t['records']:,}",
        f"{manifest['seconds']:.1f}",
        style="bold",
    )
    console.print(table)
    if near:
        nd = manifest["near_dedup"]
        how = f"Jaccard >= {nd['threshold']} on {nd['shingle']}-word shingles"
        console.print(f"near dedup: {nd['seconds']:.1f} s ({how})", highlight=False)
    drops = Table(title="dropped rows by reason (manifest.json has example locations)")
    for col in ("source", "reason", "rows"):
        drops.add_column(col, justify="right" if col == "rows" else "left", no_wrap=col != "reason")
    for name, s in manifest["sources"].items():
        for reason, count in s["dropped"].items():
            drops.add_row(name, reason, f"{count:,}")
    if drops.row_count:
        console.print(drops)


@app.command("sources")
def list_sources() -> None:
    """List the registered source loaders, what they produce and their license."""
    from meadow import sources

    table = Table(title="meadow sources")
    table.add_column("loader", no_wrap=True)
    for col in ("produces", "license", "summary"):
        table.add_column(col)
    for name, spec in sources.registry().items():
        produces = spec.produces + (" (test only)" if spec.test_only else "")
        table.add_row(name, produces, spec.license, spec.summary)
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@app.command()
def check(recipe: Annotated[Path, typer.Argument(help="Recipe YAML to validate.")]) -> None:
    """Validate RECIPE and list the input files of each source and benchmark, without building.

    Exits with status 1 when the recipe is invalid or any source or benchmark has no input file.
    """
    from meadow.schemas.recipe import benchmark_paths, load_recipe, resolve_paths

    try:
        r = load_recipe(recipe)
    except MeadowError as err:
        _fail(err)
        return
    missing = 0
    checks = [(n, e, f"loader {e.loader}, n={e.n}", resolve_paths) for n, e in r.sources.items()]
    checks += [
        (n, e, f"benchmark {e.kind}", lambda n, e: benchmark_paths(n, e, Path.cwd()))
        for n, e in r.benchmarks.items()
    ]
    for name, entry, what, resolve in checks:
        try:
            paths = resolve(name, entry)
        except MeadowError as err:
            missing += 1
            console.print(f"[red]missing[/] {err}", highlight=False, soft_wrap=True)
            continue
        shown = ", ".join(_shown(p) for p in paths[:3]) + (
            f", ... ({len(paths)} files)" if len(paths) > 3 else ""
        )
        console.print(f"[green]ok[/] {name}: {what}: {shown}", highlight=False)
    kinds = "sources and benchmarks" if r.benchmarks else "sources"
    if missing:
        _fail(MeadowError(f"{recipe}: {missing} of {len(checks)} {kinds} have no input file"))
    console.print(f"{recipe}: valid, every one of its {kinds} has its input files", highlight=False)


@app.command()
def convert(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML whose passage sources to rephrase.")],
    source: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--source", "-s", help="Only this source (repeatable). Default: every passage source."),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Records JSONL. Default: <output_dir>/<name>/rephrased.jsonl."),
    ] = None,
    replay: Annotated[
        bool, typer.Option("--replay", help="Take every LLM answer from the cache; a miss is an error.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")] = False,
) -> None:
    """Rephrase the passages of RECIPE (flashcards, WikiDoc textbook) into Q/A records.

    Same model, prompts, ranking, n and cache as meadow build:
    a later build reuses every answer.

    The progress bar shows requests, cache hits, failures and tokens.
    """
    from meadow.build.convert import convert as run_convert

    try:
        out, stats = run_convert(recipe, only=source, output=output, replay=replay, progress=not quiet)
    except MeadowError as err:
        _fail(err)
        return
    if not quiet:
        table = Table(title="meadow convert")
        table.add_column("source", overflow="fold", min_width=12)
        for col in ("passages", "accepted", "failed", "requests", "cached", "tokens", "cost $"):
            table.add_column(col, justify="right")
        for name, s in stats.items():
            llm = s.get("llm", {})
            table.add_row(
                name,
                f"{llm.get('passages', 0):,}",
                f"{llm.get('accepted', 0):,}",
                f"{sum(llm.get('failed', {}).values()):,}",
                f"{llm.get('requests', 0):,}",
                f"{llm.get('cache_hits', 0):,}",
                f"{llm.get('prompt_tokens', 0) + llm.get('completion_tokens', 0):,}",
                f"{llm.get('cost_usd', 0):.4f}",
            )
        console.print(table)
    records = sum(s["sampled"] for s in stats.values())
    console.print(f"wrote {records:,} records to {out}", highlight=False)


@app.command()
def fetch(
    recipe: Annotated[
        Path, typer.Argument(help="Recipe YAML whose sources and benchmarks to fetch, e.g. recipes/v1.yaml.")
    ],
    only: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--only", help="Fetch only this source or benchmark (a recipe name); repeatable."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be downloaded, with sizes; write nothing.")
    ] = False,
    raw_dir: Annotated[
        Path, typer.Option("--raw-dir", help="Where <source>/, <benchmark>/ and sources.lock go.")
    ] = Path("data/raw"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Download the raw files every source of RECIPE needs into RAW_DIR/<source>/.

    The test files of the recipe's benchmarks (the evaluation sets the build
    decontaminates against) go into RAW_DIR/<benchmark>/ the same way.

    Downloads resume (a .part file continues where it stopped). A file that
    another source or benchmark already fetched from the same origin is
    linked (or copied) and verified, not downloaded again.

    Every file is verified by size and sha256 against the recipe or
    RAW_DIR/sources.lock (the first download records them), skipped when
    complete, and renamed into place only when good.

    Archives are unpacked; each source folder gets a SOURCE.md (license,
    citation, origins).

    Hugging Face: HF_ENDPOINT and HF_TOKEN (or `hf auth login`) are honoured.

    Kaggle (CORD-19): ~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY.

    Files only a person can download (Google Drive, AnkiWeb) are listed with
    where to get them and where to put them.

    Exit status 1: a download failed or a manual download is still needed.
    """
    from meadow.hub.fetch import fetch as run_fetch
    from meadow.io import human_size

    try:
        report = run_fetch(recipe, only=only, raw_dir=raw_dir, dry_run=dry_run, progress=not quiet)
    except MeadowError as err:
        _fail(err)
        return
    table = Table(title="meadow fetch" + (" --dry-run" if dry_run else ""))
    table.add_column("source", overflow="fold")
    table.add_column("file", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    colour = {"error": "red", "manual": "yellow", "no entry": "yellow", "would download": "cyan"}
    for item in report.items:
        style = colour.get(item.status, "green")
        detail = item.detail if item.status not in ("error", "manual", "no entry") else "(see below)"
        table.add_row(
            item.source,
            item.key.split("/", 1)[1] or "-",
            f"[{style}]{item.status}[/]",
            human_size(item.size) if item.size is not None or item.status != "manual" else "",
            detail,
        )
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    for item in report.manual:
        console.print(f"[yellow]{item.key}:[/] {item.detail}", highlight=False, soft_wrap=True)
    for item in report.errors:
        console.print(f"[red]{item.key}:[/] {item.detail}", highlight=False, soft_wrap=True)
    if dry_run:
        known = [i.size for i in report.items if i.status == "would download"]
        total = sum(s for s in known if s is not None)
        unknown = sum(s is None for s in known)
        sizes = human_size(total) + (f" plus {unknown} of unknown size" if unknown else "")
        if unknown == len(known):
            sizes = "sizes unknown"
        console.print(f"{len(known)} file(s) to download, {sizes}", highlight=False)
        return
    if report.errors or report.manual:
        _fail(
            MeadowError(
                f"{len(report.errors)} download(s) failed, {len(report.manual)} file(s) need a manual "
                f"download (see above); what is done is kept and recorded in {report.lock_path}"
            )
        )
    console.print(f"every file is in place and verified; checksums in {report.lock_path}", highlight=False)


@app.command()
def push(
    build_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(help="Build folder (or its recipe YAML); default: the only build in data/processed."),
    ] = None,
    repo_id: Annotated[
        str,
        typer.Option("--repo-id", help="Repository on the Hub: ORG/NAME (a dataset; a model with --model)."),
    ] = ...,
    model: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--model", help="Push this `meadow train` output folder as a model repository, not a build."
        ),
    ] = None,
    merged: Annotated[
        bool, typer.Option("--merged", help="--model: push OUTPUT_DIR/merged, not the LoRA adapter.")
    ] = False,
    eval_files: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Option("--eval", help="--model: a `meadow eval` results.json for the card (repeatable)."),
    ] = None,
    dataset_repo_id: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--dataset-repo-id", help="--model: the Hub dataset it was trained on (ORG/NAME)."),
    ] = None,
    base_model: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--base-model", help="--model: the base model's Hub id, where meadow cannot tell."),
    ] = None,
    license_: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--license", help="--model: the card's license (default: the base model's, or other)."),
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repository private.")] = False,
    revision: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--revision", help="Branch to commit to (created if missing); default: main."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Stage and list the files and commit; upload nothing.")
    ] = False,
    stage_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--stage", help="Write the repository folder to this folder and upload nothing."),
    ] = None,
) -> None:
    """Upload a build (a dataset repository) or a trained model (--model) to the Hub, in one commit.

    A build is first checked against its manifest.json (sizes and sha256 of
    every output); a half-written or edited build is refused. The repository
    holds: README.md (dataset card with YAML metadata and one config per
    source, `default` = the merged set), the merged Parquet and JSON,
    data/<source>/train-00000-of-00001.parquet, manifest.json, recipe.yaml
    and LICENSE.md.

    --model OUTPUT_DIR (a `meadow train` --output_dir): the LoRA adapter, or
    with --merged (or when there is no adapter) the full weights, the
    tokenizer, meadow_train.json and a model card (base model, data build,
    settings, losses, the --eval tables, how to load it, not for clinical
    use). Checkpoints (optimizer states) and pickles are never uploaded.

    --stage DIR writes exactly that folder; --dry-run lists it. Neither needs
    a token nor uploads anything.

    Token: HF_TOKEN, else the one saved by `hf auth login`. HF_ENDPOINT is
    honoured. The token is never written or logged.
    """
    from meadow.io import human_size

    try:
        model_only = {
            "--merged": merged,
            "--eval": eval_files,
            "--dataset-repo-id": dataset_repo_id,
            "--base-model": base_model,
            "--license": license_,
        }
        if model is not None and build_dir is not None:
            raise MeadowError(
                f"a build folder ({build_dir}) and --model ({model}) both given: push one at a time"
            )
        if model is None:
            given = [flag for flag, value in model_only.items() if value]
            if given:
                raise MeadowError(f"{', '.join(given)}: only with --model OUTPUT_DIR (a trained model)")
        if model is not None:
            from meadow.hub.model import push_model

            result = push_model(
                model,
                repo_id=repo_id,
                merged=merged,
                dataset_repo_id=dataset_repo_id,
                eval_paths=eval_files,
                base_model_id=base_model,
                license=license_,
                private=private,
                revision=revision,
                dry_run=dry_run,
                stage_dir=stage_dir,
            )
        else:
            from meadow.hub.dataset import push as run_push

            result = run_push(
                build_dir,
                repo_id=repo_id,
                private=private,
                revision=revision,
                dry_run=dry_run,
                stage_dir=stage_dir,
            )
    except MeadowError as err:
        _fail(err)
        return
    staged = result.staged
    where = f"datasets/{repo_id}" if model is None else f"model {repo_id}"
    table = Table(title=where + (" (not uploaded)" if not result.uploaded else ""))
    table.add_column("path in repo", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    for path, size in staged.files:
        table.add_row(path, human_size(size))
    console.print(table)
    total = sum(size for _, size in staged.files)
    if model is None:
        configs = ", ".join(f"{c} ({n:,})" for c, n in staged.configs.items())
        console.print(f"{len(staged.files)} files, {human_size(total)}; configs: {configs}", highlight=False)
        source = staged.build_dir
    else:
        what = {"adapter": "LoRA adapter", "merged": "merged weights", "full": "full weights"}
        console.print(
            f"{len(staged.files)} files, {human_size(total)}: {what[staged.run.kind]} of "
            f"{staged.base.hub_id or staged.base.trained_on}",
            highlight=False,
        )
        for path, why in staged.run.left_out:
            console.print(f"left out: {path}: {why}", highlight=False, soft_wrap=True)
        source = staged.run.weights_dir
    if result.uploaded:
        console.print(f"pushed {source} in one commit: {result.commit_url}", highlight=False)
    else:
        console.print(f"staged {source} in {staged.folder}; nothing was uploaded", highlight=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context) -> None:
    """Fine-tune a model on a build with medAlpaca's train.py flags (LoRA, 8-bit, 4-bit QLoRA).

    medAlpaca's command line works as written, `python medalpaca/train.py`
    replaced by `meadow train`: --flag value or --flag=value, booleans as
    True/False, e.g.

      meadow train --model HuggingFaceTB/SmolLM2-135M-Instruct
      --data_path data/processed/demo --output_dir output
      --train_in_8bit False --use_lora True --bf16 False --fp16 False
      --global_batch_size 8 --per_device_batch_size 2 --max_steps 10

    --config FILE.yaml takes the same keys; flags override it.

    medAlpaca's flags (its defaults): --model (embedded SmolLM2)
    --data_path (a JSON file or a build folder) --prompt_template (medalpaca,
    or a JSON path) --val_set_size 0.1 --output_dir ./output
    --train_in_8bit True --use_lora True --model_max_length 256
    --train_on_inputs True --fp16 True --bf16 False --tf32
    --global_batch_size 128 --per_device_batch_size 2
    --gradient_checkpointing False --lora_r 8 --lora_alpha 16
    --lora_dropout 0.1 --lora_target_modules q_proj,v_proj --num_epochs 3
    --learning_rate 2e-5 --warmup_steps 100 --eval_steps 200
    --save_total_limit 3 --optim adamw_torch --lr_scheduler_type cosine
    --use_wandb False --wandb_project medalpaca --wandb_run_name test.

    meadow's additions: --load_in_4bit (QLoRA), --completion_only_loss,
    --packing (padding-free rows, no attention across examples), --max_steps,
    --resume_from_checkpoint (a folder, or True: the latest), --merge (also
    write merged weights to OUTPUT_DIR/merged), --logging_steps 10, --seed 42.

    fp16 needs a GPU: on a CPU it becomes float32. Several processes:
    accelerate launch --multi_gpu --num_processes N -m meadow.cli train ...
    """
    from meadow.train.config import load_config, parse_flags
    from meadow.train.trainer import train as run_train

    try:
        flags, config_file = parse_flags(list(ctx.args))
        config = load_config(config_file, **flags)
        result = run_train(config)
    except MeadowError as err:
        _fail(err)
        return
    if not result.main_process:
        return
    table = Table(title="meadow train")
    table.add_column("metric")
    table.add_column("value", justify="right")
    shown = ("train_loss", "eval_loss", "train_runtime", "seconds_per_step")
    for key in shown:
        if key in result.metrics:
            table.add_row(key, f"{result.metrics[key]:.4g}")
    table.add_row("steps", str(result.global_step))
    for split_name, stats in result.data.items():
        if stats:
            table.add_row(
                f"{split_name} examples (truncated)", f"{stats['examples']:,} ({stats['truncated']:,})"
            )
    console.print(table)
    where = f"{result.output_dir}" + (f" (merged: {result.merged_dir})" if result.merged_dir else "")
    console.print(f"saved to {where}", highlight=False)


@app.command("eval")
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
        int, typer.Option("--max-new-tokens", "--max_new_tokens", help="generate mode: tokens per answer.")
    ] = 32,
    prompt: Annotated[
        str, typer.Option("--prompt", help="medalpaca or chat (the model's template).")
    ] = "medalpaca",
    shots: Annotated[int, typer.Option("--shots", help="Few-shot examples per question.")] = 0,
    fewshot_from: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--fewshot-from", "--fewshot_from", help="KIND:PATH_OR_GLOB of few-shot examples (e.g. MMLU dev)."
        ),
    ] = None,
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--limit", help="At most this many questions per benchmark (the first ones)."),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            "--batch_size",
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
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "--output_dir", "-o", help="Where results go.")
    ] = Path("data/eval/run"),
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
        _fail(err)
        return
    typer.echo(markdown_table([results], "acc"), nl=False)
    for reason, count in results["removed"].items():
        console.print(f"removed {count} question(s): {reason}", highlight=False)
    console.print(
        f"{results['questions']} questions in {results['seconds']:.1f} s; wrote {output_dir}", highlight=False
    )


@app.command()
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
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "--max_new_tokens")] = 256,
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
        _fail(err)


@app.command()
def stats(
    build_dir: Annotated[Path, typer.Argument(help="A build folder, e.g. data/processed/demo.")],
    tokenizer: Annotated[
        str,
        typer.Option(
            "--tokenizer",
            "-t",
            help="Count lengths with this tokenizer: smollm2 (the embedded model), a model or tokenizer "
            "folder, a GGUF file, a cached Hub id, or 'whitespace' (words; fast, no model).",
        ),
    ] = "smollm2",
    max_records: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--max-records",
            min=1,
            help="Measure lengths on about this many records (every k-th of each source).",
        ),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", min=0, help="Kept records shown per source.")] = 3,
    contamination_rows: Annotated[
        int, typer.Option("--contamination-rows", min=0, help="Lines of contamination.jsonl shown.")
    ] = 50,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Write the report here instead of BUILD_DIR/report."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Write an HTML report on a build: BUILD_DIR/report/index.html, plus its charts as PNGs.

    Records per source through each step (drops, filters, decontamination, exact and near
    duplicates, subsample), drop reasons, contamination hits, token lengths per field and
    source, and sample kept and dropped records.

    One self-contained file: charts embedded, no script, no external resource.
    """
    from meadow.stats.report import write_report

    try:
        report = write_report(
            build_dir,
            output=output,
            tokenizer=tokenizer,
            max_records=max_records,
            samples=samples,
            contamination_rows=contamination_rows,
            progress=not quiet,
        )
    except MeadowError as err:
        _fail(err)
        return
    console.print(f"wrote {report.path} ({len(report.images)} charts)", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
