"""meadow push: verification of the build, the staged repository folder (loaded back with
``datasets``), and one real commit round trip against a fake Hub on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from meadow import sources
from meadow.build import build
from meadow.cli import app
from meadow.hub.push import PushError, find_build, push, stage, verify_build
from meadow.schemas.outputs import PARQUET_NAME
from meadow.schemas.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes" / "demo.yaml"
TOKEN = "hf_test_secret_token_123"


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("builds")
    return build(DEMO, output_dir=out, base_dir=REPO, progress=False).out_dir


@pytest.fixture
def build_dir(demo_build: Path, tmp_path: Path) -> Path:
    """A private copy of the demo build (tests may break it)."""
    copy = tmp_path / "processed" / "demo"
    shutil.copytree(demo_build, copy)
    return copy


def front_matter(card: str) -> dict[str, Any]:
    assert card.startswith("---\n")
    return yaml.safe_load(card[4 : card.index("\n---\n", 4)])


# --------------------------------------------------------------------------- staging


def test_stage_writes_the_hub_layout(build_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # where the manifest's recipe_path (recipes/demo.yaml) is
    manifest = json.loads((build_dir / "manifest.json").read_text())
    staged = stage(build_dir, tmp_path / "stage", repo_id="org/medical-meadow-demo")
    folder = tmp_path / "stage"
    names = [name for name, s in manifest["sources"].items() if s["sampled"]]
    expected = {
        "README.md",
        "LICENSE.md",
        "manifest.json",
        "recipe.yaml",
        "merged_medical_meadow.json",
        "merged_medical_meadow.parquet",
        *(f"data/{n}/train-00000-of-00001.parquet" for n in names),
        # every other file the build wrote (the demo's decontamination report)
        *(
            n
            for n in manifest["outputs"]
            if n.endswith((".json", ".jsonl")) and n != "merged_medical_meadow.json"
        ),
    }
    assert "contamination.jsonl" in expected
    assert {p for p, _ in staged.files} == expected
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == expected
    assert (folder / "manifest.json").read_bytes() == (build_dir / "manifest.json").read_bytes()
    assert (folder / PARQUET_NAME).read_bytes() == (build_dir / PARQUET_NAME).read_bytes()
    assert (folder / "recipe.yaml").read_bytes() == DEMO.read_bytes()

    # Each source's file holds exactly its rows, in the merged order.
    merged = pq.read_table(build_dir / PARQUET_NAME).to_pylist()
    start = 0
    for name in names:
        rows = pq.read_table(folder / f"data/{name}/train-00000-of-00001.parquet").to_pylist()
        assert len(rows) == manifest["sources"][name]["sampled"] == staged.configs[name]
        assert rows == merged[start : start + len(rows)]
        start += len(rows)
    assert start == len(merged) == staged.configs["default"]

    card = (folder / "README.md").read_text()
    meta = front_matter(card)
    assert meta["license"] == "other" and meta["license_link"] == "LICENSE.md"
    assert meta["task_categories"] == ["question-answering", "text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert configs["default"]["default"] is True
    assert configs["default"]["data_files"] == [{"split": "train", "path": PARQUET_NAME}]
    assert set(configs) == {"default", *names}
    assert configs["cord19"]["data_files"] == [{"split": "train", "path": "data/cord19/train-*.parquet"}]
    assert 'load_dataset("org/medical-meadow-demo", ' in card
    specs = sources.registry()
    for s in manifest["sources"].values():  # every source's citation and license
        citation = specs[s["loader"]].citation.strip()
        assert citation.splitlines()[0] in card
        assert specs[s["loader"]].license in (folder / "LICENSE.md").read_text()


def test_staged_folder_loads_with_datasets(build_dir, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "stage"
    staged = stage(build_dir, folder, repo_id="org/demo")
    cache = str(tmp_path / "cache")
    one = datasets.load_dataset(
        "parquet",
        data_files={"train": str(folder / "data/cord19/train-00000-of-00001.parquet")},
        cache_dir=cache,
    )
    assert one["train"].num_rows == staged.configs["cord19"]
    assert one["train"].column_names == ["instruction", "input", "output", "source", "id", "meta"]
    merged = datasets.load_dataset("parquet", data_files=str(folder / PARQUET_NAME), cache_dir=cache)
    assert merged["train"].num_rows == staged.configs["default"]
    # The card's configs, read the way the Hub's viewer and load_dataset(repo) read them.
    assert datasets.get_dataset_config_names(str(folder)) == list(staged.configs)
    mmlu = datasets.load_dataset(str(folder), "mmlu", cache_dir=cache)
    assert mmlu["train"].num_rows == staged.configs["mmlu"]


def test_the_recipe_falls_back_to_the_manifests_copy(tmp_path):
    recipe = tmp_path / "demo.yaml"
    shutil.copyfile(DEMO, recipe)
    build_dir = build(recipe, output_dir=tmp_path / "out", base_dir=REPO, progress=False).out_dir
    recipe.write_text(recipe.read_text() + "# edited after the build\n")
    stage(build_dir, tmp_path / "stage", repo_id="org/demo")
    text = (tmp_path / "stage" / "recipe.yaml").read_text()
    assert text.startswith("# The recipe of this build as meadow resolved it")
    copy = tmp_path / "copy.yaml"
    copy.write_text(text)
    assert list(load_recipe(copy).sources) == list(load_recipe(DEMO).sources)


def test_stage_refuses_a_folder_that_is_not_a_stage(build_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(PushError, match="not empty"):
        stage(build_dir, tmp_path / "mine", repo_id="org/demo")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    stage(build_dir, tmp_path / "again", repo_id="org/demo")
    stage(build_dir, tmp_path / "again", repo_id="org/demo")  # an earlier stage is replaced


# --------------------------------------------------------------------------- refusing bad builds


def test_a_build_without_manifest_is_refused(build_dir, tmp_path):
    (build_dir / "manifest.json").unlink()
    with pytest.raises(PushError, match="no manifest.json"):
        push(build_dir, repo_id="org/demo", stage_dir=tmp_path / "stage")
    assert not (tmp_path / "stage").exists()


@pytest.mark.parametrize(
    "victim", ["merged_medical_meadow.parquet", "merged_medical_meadow.json", "README.md"]
)
def test_a_changed_or_half_written_build_is_refused(build_dir, tmp_path, victim):
    path = build_dir / victim
    path.write_bytes(path.read_bytes()[:-10])  # cut short, as a crash mid-write would
    with pytest.raises(PushError, match="does not match manifest.json") as err:
        push(build_dir, repo_id="org/demo", stage_dir=tmp_path / "stage")
    assert victim in str(err.value) and "Nothing was pushed" in str(err.value)
    assert not (tmp_path / "stage").exists()


def test_a_missing_output_is_refused(build_dir):
    (build_dir / "merged_medical_meadow.json").unlink()
    with pytest.raises(PushError, match="missing"):
        verify_build(build_dir)


def test_find_build(build_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_build(None, tmp_path / "processed") == build_dir
    shutil.copytree(build_dir, tmp_path / "processed" / "other")
    with pytest.raises(PushError, match="2 builds"):
        find_build(None, tmp_path / "processed")
    with pytest.raises(PushError, match="no build"):
        find_build(None, tmp_path / "nothing")
    assert find_build(DEMO) == Path("data/processed/demo")


# --------------------------------------------------------------------------- a fake Hub


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeHub:
    """The Hub endpoints that whoami, create_repo, create_branch and create_commit use, for the
    dataset or model repository org/demo.

    Files are answered "regular" by preupload, so the commit carries them base64-encoded;
    the commit writes them to ``files``. Tokens other than TOKEN are rejected with 401."""

    def __init__(self, *, commit_status: int = 200):
        self.calls: list[Call] = []
        self.files: dict[str, bytes] = {}
        self.commit_status = commit_status
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                call = Call(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                hub.calls.append(call)
                status, payload = hub.answer(call)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("X-Error-Message", "Invalid credentials in Authorization header")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def answer(self, call: Call) -> tuple[int, Any]:
        if call.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "Invalid credentials in Authorization header"}
        path = call.path.split("?")[0]
        if path == "/api/whoami-v2":
            return 200, {"name": "tester", "type": "user"}
        if path == "/api/repos/create":
            kind = json.loads(call.body).get("type") or "model"
            return 200, {"url": f"{self.url}/{'datasets/' if kind == 'dataset' else ''}org/demo"}
        if path == "/api/validate-yaml":
            return 200, {"errors": [], "warnings": []}
        path = path.replace("/api/models/", "/api/datasets/", 1)  # the same answers for both
        if path.startswith("/api/datasets/org/demo/branch/"):
            return 200, {}
        if path.startswith("/api/datasets/org/demo/preupload/"):
            files = json.loads(call.body)["files"]
            return 200, {
                "files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            }
        if path.startswith("/api/datasets/org/demo/commit/"):
            if self.commit_status != 200:
                return self.commit_status, {"error": "You don't have the rights to write to org/demo"}
            for line in call.body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    self.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            return 200, {
                "commitUrl": f"{self.url}/datasets/org/demo/commit/{'c' * 40}",
                "commitOid": "c" * 40,
            }
        return 404, {"error": f"no route {path}"}

    def paths(self) -> list[str]:
        return [f"{c.method} {c.path.split('?')[0]}" for c in self.calls]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    server = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield server
    server.close()


def test_push_uploads_the_staged_folder_in_one_commit(build_dir, tmp_path, hub, caplog):
    caplog.set_level(logging.DEBUG)
    staged = stage(build_dir, tmp_path / "expected", repo_id="org/demo")
    result = push(build_dir, repo_id="org/demo", private=True)
    assert result.uploaded and result.commit_oid == "c" * 40 and "/commit/" in result.commit_url
    assert hub.paths() == [
        "GET /api/whoami-v2",
        "POST /api/repos/create",
        "POST /api/validate-yaml",
        "POST /api/datasets/org/demo/preupload/main",
        "POST /api/datasets/org/demo/commit/main",
    ]
    create = json.loads(hub.calls[1].body)
    assert create["name"] == "demo" and create["organization"] == "org" and create["type"] == "dataset"
    assert create.get("private") is True or create.get("visibility") == "private"
    # One commit holding exactly the staged folder, byte for byte.
    assert sorted(hub.files) == [p for p, _ in staged.files]
    for path, data in hub.files.items():
        assert data == (tmp_path / "expected" / path).read_bytes(), path
    assert [op.path_in_repo for op in result.operations] == [p for p, _ in staged.files]
    header = json.loads(hub.calls[-1].body.splitlines()[0])
    assert header["key"] == "header" and "78 records" in header["value"]["summary"]
    # The token travels in the Authorization header only: never in a file, a body or a log.
    for call in hub.calls:
        assert TOKEN.encode() not in call.body
    assert all(TOKEN.encode() not in data for data in hub.files.values())
    assert TOKEN not in caplog.text


def test_push_to_a_branch_creates_it(build_dir, hub):
    push(build_dir, repo_id="org/demo", revision="v1")
    assert "POST /api/datasets/org/demo/branch/v1" in hub.paths()
    assert hub.paths()[-1] == "POST /api/datasets/org/demo/commit/v1"


def test_a_rejected_token_is_a_clear_error(build_dir, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(PushError) as err:
        push(build_dir, repo_id="org/demo")
    text = str(err.value)
    assert "rejected the token from HF_TOKEN" in text and "401" in text and "Nothing was pushed" in text
    assert "hf_wrong" not in text
    assert hub.paths() == ["GET /api/whoami-v2"]


def test_no_write_access_is_a_clear_error(build_dir, hub):
    hub.commit_status = 403
    with pytest.raises(PushError, match="no write access"):
        push(build_dir, repo_id="org/demo")
    assert hub.files == {}


def test_a_missing_token_is_a_clear_error(build_dir, monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(PushError, match="no Hugging Face token"):
        push(build_dir, repo_id="org/demo")


def test_push_checks_the_build_before_anything_else(build_dir, hub):
    (build_dir / "manifest.json").unlink()
    with pytest.raises(PushError, match="no manifest.json"):
        push(build_dir, repo_id="org/demo")
    assert hub.calls == []


# --------------------------------------------------------------------------- CLI


def test_cli_stage_dry_run_and_errors(build_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    runner = CliRunner()
    result = runner.invoke(
        app, ["push", str(build_dir), "--repo-id", "org/demo", "--stage", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    assert "nothing was uploaded" in result.output and (tmp_path / "s" / "README.md").is_file()
    result = runner.invoke(app, ["push", str(build_dir), "--repo-id", "org/demo", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "data/cord19/train-00000-of-00001.parquet" in result.output
    result = runner.invoke(app, ["push", str(build_dir), "--repo-id", "not-a-repo-id", "--dry-run"])
    assert result.exit_code == 1 and "ORG/NAME" in result.output
    (build_dir / "manifest.json").unlink()
    result = runner.invoke(app, ["push", str(build_dir), "--repo-id", "org/demo", "--dry-run"])
    assert result.exit_code == 1 and "no manifest.json" in result.output and "Traceback" not in result.output
