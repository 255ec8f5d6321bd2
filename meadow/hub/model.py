"""`meadow push --model`: what `meadow train` wrote, as a Hugging Face model repository, in one commit.

medAlpaca published its model zoo as Hub repositories; this publishes a meadow training run the
same way. The run's output folder (its ``--output_dir``) must hold ``meadow_train.json`` (the
settings) and weights; what is pushed is one of:

- ``adapter``: the LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``), the
  default when there is one. Its ``base_model_name_or_path`` (a local folder at training time)
  is rewritten to the base model's Hub id, so ``AutoPeftModelForCausalLM`` loads it anywhere;
- ``merged``: ``OUTPUT_DIR/merged`` (``--merge True``), with ``merged=True``, or when the folder
  holds no adapter;
- ``full``: the full weights of a run without LoRA (``config.json`` + ``*.safetensors``).

The staged repository:

```
README.md                the model card: YAML metadata (license, base_model, library_name, tags,
                         datasets, pipeline_tag) + base model, data build, settings, losses,
                         evaluation table, how to load it, and that it is not for clinical use
adapter_config.json + adapter_model.safetensors     (or config.json, *.safetensors, ...)
tokenizer files          tokenizer.json, tokenizer_config.json, chat_template.jinja, ...
meadow_train.json        the training settings (medAlpaca's flag names)
meadow_train_run.json    base model identity, data provenance and final metrics, if the run wrote it
prompt_template.json     the prompt template the model was trained with
eval/<name>.json         each ``--eval`` results file, unchanged
```

Only those files are taken: Trainer checkpoints (``checkpoint-*``, with optimizer states),
``training_args.bin`` (a pickle) and any other file are left out and listed. The rules are those
of the dataset push: ``--stage DIR`` / ``--dry-run`` upload nothing and need no token, a push
is one ``create_commit``, the token (``HF_TOKEN`` or the saved login) is never written or logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from meadow import __version__
from meadow.errors import MeadowError
from meadow.hub.commit import PushResult, check_repo_id, listing, publish, staging
from meadow.hub.errors import PushError
from meadow.hub.model_card import load_evals, model_card
from meadow.hub.training_run import (
    ADAPTER_CONFIG,
    BaseModelInfo,
    TrainingRun,
    base_model,
    find_run,
    read_json,
)
from meadow.models import HUB_REPO_ID
from meadow.schemas.outputs import TEMPLATE_NAME, TRAIN_CARD_NAME, TRAIN_CONFIG_NAME, TRAIN_RUN_NAME

log = logging.getLogger(__name__)

_NEVER = re.compile(
    r"(^|/)(checkpoint-[^/]*/|optimizer\.pt$|scheduler\.pt$|rng_state[^/]*\.pth$|[^/]*\.bin$)"
)
"""Paths that must never reach the repository: Trainer checkpoints, optimizer states, pickles."""


# --------------------------------------------------------------------------- staging


@dataclass
class StagedModel:
    """A staged model repository folder and what is in it."""

    folder: Path
    run: TrainingRun
    base: BaseModelInfo
    files: list[tuple[str, int]] = field(default_factory=list)  # (path in repo, bytes)


def stage_model(
    run: TrainingRun,
    folder: Path,
    *,
    repo_id: str,
    base: BaseModelInfo | None = None,
    dataset_repo_id: str | None = None,
    eval_paths: list[Path] | None = None,
    link: bool = False,
) -> StagedModel:
    """Write the repository folder for ``run`` to ``folder`` (atomically; an existing folder is
    replaced only if it is empty or an earlier stage). ``link``: hard-link the weights where the
    file system allows (a temporary stage), instead of copying them."""
    from meadow.models import weights_sha256
    from meadow.train.prompt import load_template

    base = base or base_model(run)
    if run.kind == "adapter" and not base.hub_id:
        raise PushError(
            f"{run.output_dir}: the adapter's base model ({base.trained_on}) has no known Hub repository, "
            "so nobody could load the adapter: name it with --base-model ORG/NAME, or push the merged "
            "weights (--merged). Nothing was pushed."
        )
    evals = load_evals(eval_paths)
    with staging(folder, TRAIN_CONFIG_NAME) as tmp:
        for name in run.files:
            source, target = run.weights_dir / name, tmp / name
            if name == ADAPTER_CONFIG:
                adapter = read_json(source, "the adapter's settings")
                adapter["base_model_name_or_path"] = base.hub_id
                target.write_text(json.dumps(adapter, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            elif link:
                _link_or_copy(source, target)
            else:
                shutil.copyfile(source, target)
        shutil.copyfile(run.output_dir / TRAIN_CONFIG_NAME, tmp / TRAIN_CONFIG_NAME)
        if run.run is not None:
            shutil.copyfile(run.output_dir / TRAIN_RUN_NAME, tmp / TRAIN_RUN_NAME)
        try:
            template = load_template(str(run.config.get("prompt_template", "medalpaca")))
            (tmp / TEMPLATE_NAME).write_text(template.model_dump_json(indent=4) + "\n", encoding="utf-8")
        except MeadowError as err:
            log.warning("the prompt template is not pushed: %s", err)
        for e in evals:
            (tmp / e.repo_path).parent.mkdir(exist_ok=True)
            shutil.copyfile(e.path, tmp / e.repo_path)
        card = model_card(
            run,
            base,
            repo_id=repo_id,
            dataset_repo_id=dataset_repo_id,
            evals=evals,
            weights_sha256=weights_sha256(run.weights_dir),
            files=listing(tmp),  # all but the card itself
        )
        (tmp / TRAIN_CARD_NAME).write_text(card, encoding="utf-8")
        staged = StagedModel(folder=folder, run=run, base=base, files=listing(tmp))
        bad = [path for path, _ in staged.files if _NEVER.search(path)]
        if bad:  # cannot happen with the lists above; a guard against a future change of them
            raise PushError(f"refusing to push {', '.join(bad)}: checkpoints and pickles are never uploaded")
    return staged


def _link_or_copy(source: Path, target: Path) -> None:
    """A temporary stage points at the weights (a hard link, else a symbolic one): a multi-GB
    model is never copied just to be uploaded."""
    try:
        os.link(source, target)
    except OSError:
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copyfile(source, target)


# --------------------------------------------------------------------------- the push


def push_model(
    output_dir: str | Path,
    *,
    repo_id: str,
    merged: bool = False,
    dataset_repo_id: str | None = None,
    eval_paths: list[Path] | None = None,
    base_model_id: str | None = None,
    license: str | None = None,  # noqa: A002 - the card's field
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    stage_dir: str | Path | None = None,
    commit_message: str | None = None,
) -> PushResult:
    """Check and stage a training run's output, then (unless ``dry_run`` or ``stage_dir``) upload
    it as a model repository in one commit."""
    check_repo_id(repo_id)
    if dataset_repo_id is not None and not HUB_REPO_ID.match(dataset_repo_id):
        raise PushError(f"--dataset-repo-id {dataset_repo_id!r}: expected the dataset's Hub id, ORG/NAME")
    if base_model_id is not None and not HUB_REPO_ID.match(base_model_id):
        raise PushError(f"--base-model {base_model_id!r}: expected the base model's Hub id, ORG/NAME")
    run = find_run(output_dir, merged=merged)
    base = base_model(run, override=base_model_id, license_override=license)
    options = {"repo_id": repo_id, "base": base, "dataset_repo_id": dataset_repo_id, "eval_paths": eval_paths}

    def commit(staged: StagedModel) -> tuple[str, str]:
        what = {"adapter": "LoRA adapter", "merged": "merged weights", "full": "full fine-tune"}[run.kind]
        return (
            commit_message or f"meadow {__version__}: {what} of {base.hub_id or base.trained_on}",
            f"Pushed by `meadow push --model` from {run.output_dir.name}; settings in {TRAIN_CONFIG_NAME}.",
        )

    return publish(
        lambda folder, temporary: stage_model(run, folder, link=temporary, **options),
        commit,
        repo_id,
        repo_type="model",
        private=private,
        revision=revision,
        dry_run=dry_run,
        stage_dir=stage_dir,
    )
