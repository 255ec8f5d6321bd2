"""Sharded builds (meadow.build.shards, meadow.build.executors): the same bytes as a single-process build,
finished shards reused by a rerun, a changed input redone, a killed worker's shard run again."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import shard_hook  # noqa: E402 (tests/shard_hook.py)
from typer.testing import CliRunner

from meadow.build import build
from meadow.cli import app
from meadow.errors import MeadowError
from meadow.schemas.outputs import JSON_NAME, MANIFEST_NAME, PARQUET_NAME

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = (JSON_NAME, PARQUET_NAME, "README.md", "dropped_samples.json", "contamination.jsonl")


def _without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {
            k: _without_timings(v)
            for k, v in value.items()
            if k not in ("seconds", "executor", "steps", "peak_rss_mib")
        }
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def assert_same_build(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).exists() == (b / name).exists(), name
        if (a / name).exists():
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((d / MANIFEST_NAME).read_text()) for d in (a, b))
    for m in (ma, mb):  # output files are compared above; their manifest entries hold the same hashes
        m.pop("outputs")
    assert _without_timings(ma) == _without_timings(mb)


def fixture_recipe(tmp_path: Path, raw: Path, extra: str = "") -> Path:
    """Every fixture source, several files per source where there are (StackExchange 3, MMLU 12,
    MEDIQA 2, CORD-19 2, PubMed advice 3), near dedup on, decontaminated against MMLU val."""
    r = raw
    recipe = tmp_path / "fixtures.yaml"
    recipe.write_text(
        f"""name: fixtures
seed: 3
output_dir: {tmp_path / "out"}
near_dedup: true
sources:
  wikidoc:
    loader: wikidoc
    path: {r}/wikidoc/*.json
    options: {{kind: patient_information}}
    n: 120
  chatdoctor: {{loader: chatdoctor, path: "{r}/chatdoctor/*.json", n: 50}}
  stackexchange: {{loader: stackexchange, path: "{r}/stackexchange/*/*.xml"}}
  mediqa: {{loader: mediqa, path: "{r}/mediqa/*.xml"}}
  cord19: {{loader: cord19, path: "{r}/cord19/*.csv", n: 60}}
  openassistant: {{loader: openassistant, path: "{r}/openassistant/*.jsonl"}}
  pubmed_causal: {{loader: pubmed_causal, path: "{r}/pubmed_causal/*.csv"}}
  pubmed_health_advice: {{loader: pubmed_health_advice, path: "{r}/pubmed_health_advice/*.csv", n: 400}}
  mmlu: {{loader: mmlu, path: "{r}/mmlu/*/*.csv"}}
benchmarks:
  mmlu_val: {{kind: mmlu, path: "{r}/mmlu/val/*.csv"}}
{extra}"""
    )
    return recipe


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Shards run through tests/shard_hook.py: each attempt appends its pid to
    <source>.<index>.pid in the returned folder, waits on .hold, fails on .fail."""
    folder = shard_hook.FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    monkeypatch.setenv(shard_hook.ENV, str(folder))
    monkeypatch.setattr("meadow.build.shards.run_shard", shard_hook.run_shard)
    try:
        from ray import cloudpickle  # Ray workers cannot import tests/: ship the module by value
    except ImportError:
        pass
    else:
        cloudpickle.register_pickle_by_value(shard_hook)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def attempts(hook: Path, tag: str) -> int:
    p = hook / f"{tag}.pid"
    return len(p.read_text().split()) if p.exists() else 0


def test_local_workers_match_the_single_process_build_on_the_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    recipe = REPO / "recipes/demo.yaml"
    one = build(recipe, output_dir=tmp_path / "one", progress=False)
    two = build(recipe, output_dir=tmp_path / "two", progress=False, workers=2)
    assert_same_build(one.out_dir, two.out_dir)
    executor = dict(two.manifest.executor or {})
    assert executor.pop("workers_peak_rss_mib") > 0
    assert executor == {"kind": "local", "workers": 2, "shards": 16, "shards_reused": 0}
    assert "executor" not in one.manifest.to_json()
    assert not (tmp_path / "two" / ".work").exists()  # removed after a successful build


def test_local_workers_match_on_the_real_fixtures(tmp_path, raw_fixtures):
    recipe = fixture_recipe(tmp_path, raw_fixtures)
    one = build(recipe, output_dir=tmp_path / "one", progress=False)
    two = build(recipe, output_dir=tmp_path / "two", progress=False, workers=2)
    assert_same_build(one.out_dir, two.out_dir)
    m = two.manifest.to_json()
    # per file: stackexchange 3, mediqa 2, mmlu 12, the others 1 (cord19 and pubmed: state across files)
    assert m["executor"]["shards"] == 3 + 2 + 12 + 6
    assert m["sources"]["mmlu"]["contaminated"]["mmlu_val"] > 100  # the val questions, and copies of them
    assert m["decontamination"] == one.manifest.to_json()["decontamination"]
    assert m["near_dedup"]["seconds"] >= 0 and m["totals"]["near_duplicates"] >= 0


def test_a_large_splittable_file_is_read_in_spans_with_the_same_result(tmp_path, raw_fixtures, monkeypatch):
    # CORD-19's loader is splittable: a source of at least SPLIT_BYTES is read in one span per
    # worker; its second span holds the rows of the second file that repeat cord_uids of the first.
    monkeypatch.setattr("meadow.build.shards.SPLIT_BYTES", 0)
    recipe = fixture_recipe(tmp_path, raw_fixtures)
    one = build(recipe, output_dir=tmp_path / "one", progress=False)
    two = build(recipe, output_dir=tmp_path / "two", progress=False, workers=2, keep_work=True)
    assert_same_build(one.out_dir, two.out_dir)
    assert two.manifest.to_json()["executor"]["shards"] == 3 + 2 + 12 + 6 + 1
    done = [json.loads(p.read_text()) for p in sorted((tmp_path / "two/.work").rglob("cord19/*.done"))]
    assert [d["stats"]["read"] for d in done] == [77, 77]  # about half the bytes each
    assert done[1]["stats"]["dropped"]["duplicate_cord_uid"] == 4
    assert one.manifest.to_json()["sources"]["cord19"]["dropped"]["duplicate_cord_uid"] == 4


def test_rerun_reuses_finished_shards_and_redoes_changed_ones(tmp_path, raw_fixtures, hook):
    for src in sorted((raw_fixtures / "stackexchange").glob("*/*.xml")):  # three sites: three shards
        (tmp_path / src.parent.name).mkdir()
        shutil.copy(src, tmp_path / src.parent.name / "Posts.xml")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: resume\noutput_dir: {tmp_path / 'out'}\nsources:\n"
        f"  se: {{loader: stackexchange, path: '{tmp_path}/*/Posts.xml', n: 100}}\n"
    )
    reference = build(recipe, output_dir=tmp_path / "ref", progress=False)

    (hook / "se.1.fail").touch()  # the second shard fails
    with pytest.raises(RuntimeError, match="shard se.1 fails"):
        build(recipe, progress=False, workers=1)
    work = tmp_path / "out" / ".work" / "resume" / "se"
    assert (work / "00000.done").exists() and not (work / "00001.done").exists()
    assert not (tmp_path / "out" / "resume").exists()  # no output from a failed build
    first_done = (work / "00000.done").stat().st_mtime_ns

    (hook / "se.1.fail").unlink()
    result = build(recipe, progress=False, workers=2, keep_work=True)
    assert_same_build(reference.out_dir, result.out_dir)
    assert attempts(hook, "se.0") == 1  # finished: not read again
    assert attempts(hook, "se.1") == 2
    assert (work / "00000.done").stat().st_mtime_ns == first_done
    assert result.manifest.to_json()["executor"]["shards_reused"] >= 1

    # a changed input file invalidates its shard only
    posts = sorted(tmp_path.glob("*/Posts.xml"))[2]
    posts.write_bytes(posts.read_bytes())  # same bytes, new mtime: redone (the fingerprint is size + mtime)
    os.utime(posts, ns=(time.time_ns(), time.time_ns() + 10**9))
    before = {i: attempts(hook, f"se.{i}") for i in range(3)}
    again = build(recipe, progress=False, workers=2)
    assert {i: attempts(hook, f"se.{i}") - before[i] for i in range(3)} == {0: 0, 1: 0, 2: 1}
    assert again.manifest.to_json()["executor"]["shards_reused"] == 2
    assert_same_build(reference.out_dir, again.out_dir)
    assert not (tmp_path / "out" / ".work").exists()  # removed: no --keep-work this time


def test_a_changed_setting_redoes_every_shard(tmp_path, raw_fixtures, hook):
    recipe = tmp_path / "r.yaml"
    mmlu = f"{raw_fixtures}/mmlu/dev/*.csv"
    body = f"output_dir: {tmp_path / 'out'}\nsources:\n  mmlu: {{loader: mmlu, path: '{mmlu}'}}\n"
    recipe.write_text("name: s\nseed: 1\n" + body)
    build(recipe, progress=False, workers=2, keep_work=True)
    recipe.write_text("name: s\nseed: 2\n" + body)
    m = build(recipe, progress=False, workers=2).manifest.to_json()
    assert m["executor"]["shards_reused"] == 0
    assert all(attempts(hook, f"mmlu.{i}") == 2 for i in range(6))


def test_a_killed_local_worker_is_retried(tmp_path, monkeypatch, hook):
    monkeypatch.chdir(REPO)
    recipe = REPO / "recipes/demo.yaml"
    reference = build(recipe, output_dir=tmp_path / "ref", progress=False)
    for p in hook.iterdir():
        p.unlink()
    outcome = _build_killing_one_shard(
        hook, "mmlu.0", lambda: build(recipe, output_dir=tmp_path / "killed", progress=False, workers=2)
    )
    assert attempts(hook, "mmlu.0") == 2
    assert_same_build(reference.out_dir, outcome.out_dir)


def _build_killing_one_shard(hook: Path, tag: str, run) -> object:
    """Run ``run`` in a thread with shard ``tag`` held at its start; SIGKILL its worker, let it go."""
    hold = hook / f"{tag}.hold"
    hold.touch()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = run()
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        pid_file = hook / f"{tag}.pid"
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, f"shard {tag} never started"
            assert thread.is_alive(), f"the build ended before shard {tag} started: {box}"
            time.sleep(0.05)
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    finally:
        hold.unlink()
    thread.join(120)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]


# --------------------------------------------------------------------------- Ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A local Ray cluster (2 CPUs) on 127.0.0.1, stopped at the end of the module."""
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ray is not installed; CI=true requires it (pip install -e '.[dev]')")
        pytest.skip("ray is not installed (pip install ray): the Ray executor tests need a local cluster")
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    cmd = [
        str(ray_bin), "start", "--head", "--num-cpus", "2", "--port", str(port),
        "--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats",
    ]  # fmt: skip
    # workers see the shard hook's folder (tests/shard_hook.py) through the environment
    env = {**os.environ, shard_hook.ENV: str(shard_hook.FOLDER)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    if proc.returncode:
        pytest.fail(f"ray start failed:\n{proc.stdout}\n{proc.stderr}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, timeout=120)


def test_ray_executor_matches_the_local_one(tmp_path, monkeypatch, ray_cluster):
    monkeypatch.chdir(REPO)
    # the demo's CORD-19 file read in spans too: one per CPU of the cluster, as one per local worker
    monkeypatch.setattr("meadow.build.shards.SPLIT_BYTES", 0)
    recipe = REPO / "recipes/demo.yaml"
    one = build(recipe, output_dir=tmp_path / "one", progress=False)
    local = build(recipe, output_dir=tmp_path / "local", progress=False, workers=2)
    on_ray = build(recipe, output_dir=tmp_path / "ray", progress=False, executor="ray", address=ray_cluster)
    assert_same_build(local.out_dir, on_ray.out_dir)
    assert_same_build(one.out_dir, on_ray.out_dir)
    assert (
        on_ray.manifest.to_json()["executor"]["kind"] == "ray"
        and on_ray.manifest.to_json()["executor"]["shards"] == 17
    )


def test_ray_retries_the_shard_of_a_killed_worker(tmp_path, monkeypatch, hook, ray_cluster):
    monkeypatch.chdir(REPO)
    recipe = REPO / "recipes/demo.yaml"
    reference = build(recipe, output_dir=tmp_path / "ref", progress=False)
    outcome = _build_killing_one_shard(
        hook,
        "mmlu.1",
        lambda: build(
            recipe, output_dir=tmp_path / "ray", progress=False, executor="ray", address=ray_cluster
        ),
    )
    assert attempts(hook, "mmlu.1") == 2  # killed once, run again by Ray
    assert_same_build(reference.out_dir, outcome.out_dir)  # nothing lost, nothing doubled


def test_a_loader_error_in_a_worker_reads_as_in_one_process(tmp_path, raw_fixtures):
    bad = tmp_path / "bad.csv"
    rows = (raw_fixtures / "cord19/metadata.first150.csv").read_text(encoding="utf-8").splitlines(True)
    header = rows[0].rstrip("\n").split(",")
    row = ",".join({"title": "t", "abstract": "a"}.get(h, "") for h in header)  # no cord_uid: malformed
    bad.write_text(rows[0] + row + "\n", encoding="utf-8")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: bad\noutput_dir: {tmp_path}\nsources:\n  c: {{loader: cord19, path: '{bad}'}}\n"
    )
    messages = []
    for workers in (None, 2):
        with pytest.raises(MeadowError) as err:
            build(recipe, progress=False, strict=True, workers=workers)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "bad.csv:2" in messages[0]


def test_cli_build_with_workers(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    res = CliRunner().invoke(app, ["build", "recipes/demo.yaml", "-o", str(tmp_path), "-q", "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and not (tmp_path / ".work").exists()
    res = CliRunner().invoke(app, ["build", "recipes/demo.yaml", "-o", str(tmp_path), "--executor", "nope"])
    assert res.exit_code == 1 and "local or ray" in res.output
    res = CliRunner().invoke(app, ["build", "recipes/demo.yaml", "-o", str(tmp_path), "--address", "auto"])
    assert res.exit_code == 1 and "--address is for --executor ray" in res.output


@pytest.mark.parametrize("parts", [2, 3, 5, 40])
def test_spans_cover_every_row_once_in_order(tmp_path, parts):
    from meadow.build.shards import spans

    files = []
    for i, rows in enumerate((300, 0, 40, 1)):
        p = tmp_path / f"{i}.csv"
        p.write_text("h\n" + "".join(f"row {i}-{k}\n" for k in range(rows)))
        files.append(p)
    cut = spans(files, parts)
    assert cut[0][0] == (0, 0) and cut[-1][1] == (len(files), 0)
    assert all(a < b for a, b in cut) and all(x[1] == y[0] for x, y in itertools.pairwise(cut))
    assert 2 <= len(cut) <= parts
    # about the same bytes each: the biggest span holds at most twice its share (plus a line)
    starts = [line if f == 0 else 302 for (f, line), _ in cut]
    assert max(b - a for a, b in itertools.pairwise([*starts, 302])) <= 2 * 302 / parts + 2
