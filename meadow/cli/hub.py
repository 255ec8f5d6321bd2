"""`meadow fetch` and `push`: raw files from their origins, builds and models to the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from meadow.cli import render
from meadow.cli.console import console, emit_json, fail, out, show
from meadow.errors import MeadowError


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
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each file's status and size (and the plan) as JSON.")
    ] = False,
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

    try:
        report = run_fetch(recipe, only=only, raw_dir=raw_dir, dry_run=dry_run, progress=not quiet)
    except MeadowError as err:
        fail(err)
    if as_json:
        emit_json(render.fetch_data(report))
    else:
        out().print(render.fetch_table(report, dry_run))
    for note in render.fetch_notes(report):  # on stderr: what a person has to do
        console.print(note, highlight=False)
    if dry_run and not as_json:
        out().print(render.fetch_plan(report), highlight=False)
    if problem := report.problem():
        fail(MeadowError(problem))
    if dry_run:
        return
    if not as_json:
        out().print(f"every file is in place and verified; checksums in {report.lock_path}", highlight=False)


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
        fail(err)
    show(render.push_summary(result, repo_id, model is not None))
    if model is not None:
        show(render.push_left_out(result))
    out().print(render.push_done(result, model is not None), highlight=False)
