"""meadow fetch as a whole: entries without fetch, the dry run, the CLI, the recipes' fetch entries,
benchmarks, and a file another source already fetched being linked instead of downloaded again."""

from __future__ import annotations

import fnmatch
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml
from hub_fakes import (
    COMMIT,
    DATA,
    FAST,
    REPO,
    make_tar,
    one,
    sha,
    url_recipe,
    write_recipe,
)
from typer.testing import CliRunner

from meadow.cli import app
from meadow.errors import MeadowError
from meadow.hub.fetch import fetch
from meadow.hub.lock import LOCK_NAME
from meadow.hub.source_card import SOURCE_CARD
from meadow.schemas.recipe import load_recipe


def test_a_source_without_fetch_entries(workdir):
    recipe = write_recipe(workdir, {"s": {"loader": "cord19", "path": "data/raw/s/metadata.csv"}})
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "no entry" and "no fetch entry" in item.detail


def test_dry_run_lists_sizes_and_writes_nothing(workdir, server, files):
    files["/f.bin"] = DATA
    recipe = write_recipe(
        workdir,
        {
            "s": {
                "loader": "cord19",
                "path": "data/raw/s/f.bin",
                "fetch": [
                    {"kind": "url", "url": f"{server.url}/f.bin"},
                    {"kind": "url", "url": f"{server.url}/g.bin", "size": 5},
                    {"kind": "manual", "file": "h.json", "url": "https://example.org"},
                ],
            }
        },
    )
    report = fetch(recipe, dry_run=True, progress=False, net=FAST)
    statuses = [(i.status, i.size) for i in report.items]
    assert statuses == [("would download", len(DATA)), ("would download", 5), ("manual", None)]
    assert not (workdir / "data").exists()
    assert [s.method for s in server.seen] == ["HEAD"]
    result = CliRunner().invoke(app, ["fetch", str(recipe), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "2 file(s) to download" in result.output and not (workdir / "data").exists()


def test_cli_fetch_succeeds_and_unknown_sources_are_named(workdir, server, files):
    files["/f.bin"] = DATA
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    result = CliRunner().invoke(app, ["fetch", str(recipe), "-q", "--only", "s"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    result = CliRunner().invoke(app, ["fetch", str(recipe), "--only", "nope"])
    assert result.exit_code == 1 and "no source or benchmark named 'nope'" in result.output


def test_fetch_entries_are_validated_with_the_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: t\nsources:\n  s:\n    loader: cord19\n    path: x.csv\n    fetch:\n"
        "      kind: url\n      url: https://example.org/x.csv\n      sha256: nothex\n"
        "      to: ../escape.csv\n",
        encoding="utf-8",
    )
    with pytest.raises(MeadowError) as err:
        load_recipe(path)
    text = str(err.value)
    assert f"{path}:9: sources.s.fetch.sha256" in text
    assert f"{path}:10: sources.s.fetch.to" in text and "inside the source's folder" in text


def test_v1_fetch_entries_land_where_the_recipe_reads():
    recipe = load_recipe(REPO / "recipes" / "v1.yaml")
    for name, entry in recipe.sources.items():
        assert entry.fetch, f"{name} has no fetch entry"
        patterns = entry.patterns()
        assert all(p.startswith(f"data/raw/{name}/") for p in patterns), (name, patterns)
        for fe in entry.fetch:
            if fe.extract:
                root = f"data/raw/{name}/{fe.extract_to}".rstrip("/")
                assert any(
                    fnmatch.fnmatch(f"{root}/{m}".replace("*", "x.csv"), p) or p.startswith(root)
                    for m in fe.members
                    for p in patterns
                ), (name, fe)
            else:
                dest = f"data/raw/{name}/{fe.destination()}"
                assert any(fnmatch.fnmatch(dest, p) or dest == p for p in patterns), (name, dest, patterns)


def test_v1_benchmark_fetch_entries_land_where_the_recipe_reads():
    recipe = load_recipe(REPO / "recipes" / "v1.yaml")
    assert set(recipe.benchmarks) == {"mmlu_test", "medqa_test", "usmle", "pubmedqa"}
    assert recipe.decontaminate.benchmarks == list(recipe.benchmarks)
    for name, entry in recipe.benchmarks.items():
        assert entry.fetch, f"{name} has no fetch entry"
        patterns = entry.patterns()
        assert all(p.startswith(f"data/raw/{name}/") for p in patterns), (name, patterns)
        for fe in entry.fetch:
            if fe.extract:
                root = f"data/raw/{name}/{fe.extract_to}".rstrip("/")
                assert all(any(fnmatch.fnmatch(f"{root}/{m}", p) for p in patterns) for m in fe.members), fe
            elif not fe.destination().endswith(("_solutions.json", "question_with_images.json")):
                dest = f"data/raw/{name}/{fe.destination()}"  # (solutions are read beside the steps)
                assert any(fnmatch.fnmatch(dest, p) for p in patterns), (name, dest, patterns)


# --------------------------------------------------------------------------- benchmarks


PUBMEDQA = {
    "ori_pqal.json": json.dumps(
        {
            "101": {
                "QUESTION": "Does regular aerobic exercise lower resting blood pressure in older adults?",
                "CONTEXTS": [
                    "Hypertension is common in older adults and raises the risk of stroke and heart failure.",
                    "We randomised 240 adults aged 65 to 80 years to supervised walking or usual care.",
                ],
                "final_decision": "yes",
            },
            "102": {
                "QUESTION": "Is coffee intake associated with atrial fibrillation?",
                "CONTEXTS": [
                    "A cohort of 8,000 adults reported coffee intake and was followed for 10 years."
                ],
                "final_decision": "no",
            },
        }
    ).encode(),
    "test_ground_truth.json": json.dumps({"101": "yes"}).encode(),
}


def benchmark_recipe(workdir: Path, url: str) -> Path:
    """A source ``s`` and a benchmark ``pubmedqa`` whose two files come from ``url``."""
    path = workdir / "recipe.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {
                    "s": {
                        "loader": "chatdoctor",
                        "path": "data/raw/s/iCliniq.json",
                        "fetch": {"kind": "url", "url": f"{url}/iCliniq.json"},
                    }
                },
                "benchmarks": {
                    "pubmedqa": {
                        "kind": "pubmedqa",
                        "path": "data/raw/pubmedqa/*.json",
                        "fetch": [{"kind": "url", "url": f"{url}/{name}"} for name in PUBMEDQA],
                    }
                },
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return path


def test_benchmarks_are_fetched_checked_and_decontaminated_against(workdir, server, files):
    copied = (
        "Hypertension is common in older adults and raises the risk of stroke and heart failure. "
        "We randomised 240 adults aged 65 to 80 years to supervised walking"
    )
    files["/iCliniq.json"] = json.dumps(
        [
            {
                "instruction": "Answer as a doctor.",
                "input": "Summarise: " + copied,
                "output": "Walking helps.",
            },
            {"instruction": "Answer as a doctor.", "input": "I have a cough since May.", "output": "Rest."},
        ]
    ).encode()
    for name, data in PUBMEDQA.items():
        files[f"/{name}"] = data
    recipe = benchmark_recipe(workdir, server.url)
    report = fetch(recipe, only=["pubmedqa"], progress=False, net=FAST)
    assert [(i.source, i.key, i.status) for i in report.items] == [
        ("pubmedqa", "pubmedqa/ori_pqal.json", "downloaded"),
        ("pubmedqa", "pubmedqa/test_ground_truth.json", "downloaded"),
    ]
    assert not (workdir / "data/raw/s").exists()
    card = (workdir / "data/raw/pubmedqa" / SOURCE_CARD).read_text()
    assert "the benchmark `pubmedqa` (kind `pubmedqa`; evaluation only" in card and "MIT" in card
    assert "PubMedQA: A Dataset for Biomedical Research Question Answering" in card
    lock = json.loads((workdir / "data/raw" / LOCK_NAME).read_text())["files"]
    assert lock["pubmedqa/ori_pqal.json"]["sha256"] == sha(PUBMEDQA["ori_pqal.json"])
    # meadow check names the source still missing, and lists the benchmark
    result = CliRunner().invoke(app, ["check", str(recipe)])
    assert result.exit_code == 1 and "ok pubmedqa: benchmark pubmedqa" in result.output
    assert "1 of 2 sources and benchmarks have no input file" in result.output
    assert one(fetch(recipe, only=["s"], progress=False, net=FAST)).status == "downloaded"
    result = CliRunner().invoke(app, ["fetch", str(recipe), "-q"])
    assert result.exit_code == 0 and "verified" in result.output, result.output
    # the fetched benchmark is what the build decontaminates against
    from meadow.build import build

    m = build(recipe, output_dir=workdir / "out", progress=False).manifest.to_json()
    assert m["sources"]["s"]["contaminated"] == {"pubmedqa": 1} and m["sources"]["s"]["sampled"] == 1
    assert m["decontamination"]["benchmarks"]["pubmedqa"]["questions"] == 1  # the test set only


def test_a_file_another_entry_fetched_is_linked_not_downloaded_again(workdir, server, files):
    members = {
        "data/dev/anatomy_dev.csv": b"q,a,b,c,d,A\n",
        "data/test/anatomy_test.csv": b"test,a,b,c,d,C\n",
        "data/test/astronomy_test.csv": b"sky,a,b,c,d,C\n",
    }
    files["/data.tar"] = make_tar(members)
    tar = {"kind": "url", "url": f"{server.url}/data.tar", "extract": True}
    recipe = workdir / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {
                    "mmlu": {
                        "loader": "mmlu",
                        "path": "data/raw/mmlu/data/dev/*.csv",
                        "fetch": {**tar, "members": ["data/dev/*"]},
                    }
                },
                "benchmarks": {
                    "mmlu_test": {
                        "kind": "mmlu",
                        "path": "data/raw/mmlu_test/data/test/*.csv",
                        "fetch": {**tar, "members": ["data/test/anatomy_test.csv"]},
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    report = fetch(recipe, progress=False, net=FAST)
    assert [i.status for i in report.items] == ["downloaded", "copied"]
    assert "the same file as mmlu/data.tar" in report.items[1].detail
    assert "unpacked 1 files" in report.items[1].detail
    assert len(server.gets("/data.tar")) == 1
    raw = workdir / "data/raw"
    assert (raw / "mmlu_test/data.tar").read_bytes() == files["/data.tar"]
    assert (raw / "mmlu_test/data/test/anatomy_test.csv").read_bytes() == members[
        "data/test/anatomy_test.csv"
    ]
    assert not (raw / "mmlu_test/data/test/astronomy_test.csv").exists()
    assert not (raw / "mmlu/data/test").exists()
    lock = json.loads((raw / LOCK_NAME).read_text())["files"]
    assert lock["mmlu_test/data.tar"]["sha256"] == lock["mmlu/data.tar"]["sha256"] == sha(files["/data.tar"])
    again = fetch(recipe, progress=False, net=FAST)
    assert [i.status for i in again.items] == ["ok", "ok"] and len(server.gets("/data.tar")) == 1
    # a dry run on a fresh benchmark folder says it would copy, not download
    shutil.rmtree(raw / "mmlu_test")
    planned = fetch(recipe, dry_run=True, progress=False, net=FAST).items[1]
    assert planned.status == "would copy" and planned.size == len(files["/data.tar"])
    # a twin that changed on disk is not trusted: the file is downloaded
    (raw / "mmlu/data.tar").write_bytes(b"not the tarball")
    assert fetch(recipe, only=["mmlu_test"], progress=False, net=FAST).items[0].status == "downloaded"


def test_a_manual_benchmark_file_is_linked_from_the_source_that_has_it(workdir):
    url = "https://drive.google.com/file/d/abc/view"
    manual = {"kind": "manual", "file": "data_clean.zip", "url": url, "extract": True}
    recipe = workdir / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {
                    "medqa": {
                        "loader": "medqa",
                        "path": "data/raw/medqa/data_clean/questions/US/train.jsonl",
                        "fetch": {**manual, "members": ["data_clean/questions/US/train.jsonl"]},
                    }
                },
                "benchmarks": {
                    "medqa_test": {
                        "kind": "medqa",
                        "path": "data/raw/medqa_test/data_clean/questions/US/test.jsonl",
                        "fetch": {**manual, "members": ["data_clean/questions/US/test.jsonl"]},
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    items = fetch(recipe, progress=False, net=FAST).items
    assert [i.status for i in items] == ["manual", "manual"]
    assert "put it at data/raw/medqa_test/data_clean.zip" in items[1].detail
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data_clean/questions/US/train.jsonl", '{"question": "q"}\n')
        zf.writestr("data_clean/questions/US/test.jsonl", '{"question": "t"}\n')
    (workdir / "data/raw/medqa").mkdir(parents=True, exist_ok=True)
    (workdir / "data/raw/medqa/data_clean.zip").write_bytes(buf.getvalue())
    items = fetch(recipe, progress=False, net=FAST).items
    assert [i.status for i in items] == ["recorded", "copied"]
    assert (
        workdir / "data/raw/medqa_test/data_clean/questions/US/test.jsonl"
    ).read_text() == '{"question": "t"}\n'
    assert [i.status for i in fetch(recipe, progress=False, net=FAST).items] == ["ok", "ok"]


def test_usmle_benchmark_from_the_hub_is_fetched_and_used(workdir, file_hub):
    _, _, state = file_hub
    usmle = REPO / "examples" / "usmle"
    names = ["step1.json", "step1_solutions.json", "question_with_images.json"]
    for name in names:
        state["small"][name] = (usmle / name).read_bytes()
    question = json.loads((usmle / "step1.json").read_text())[0]["question"]
    (workdir / "data/raw/s").mkdir(parents=True)
    (workdir / "data/raw/s/iCliniq.json").write_text(
        json.dumps([{"input": f"My exam asks: {question}", "answer_icliniq": "G6PD deficiency."}]),
        encoding="utf-8",
    )
    recipe = workdir / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {"s": {"loader": "chatdoctor", "path": "data/raw/s/iCliniq.json"}},
                "benchmarks": {
                    "usmle": {
                        "kind": "usmle",
                        "path": "data/raw/usmle/step?.json",
                        "fetch": [{"kind": "hf", "repo_id": "org/data", "file": name} for name in names],
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    report = fetch(recipe, only=["usmle"], progress=False, net=FAST)
    assert [i.status for i in report.items] == ["downloaded"] * 3
    lock = json.loads((workdir / "data/raw" / LOCK_NAME).read_text())["files"]
    assert lock["usmle/step1.json"]["revision"] == COMMIT
    assert "the benchmark `usmle` (kind `usmle`" in (workdir / "data/raw/usmle" / SOURCE_CARD).read_text()
    from meadow.build import build

    m = build(recipe, output_dir=workdir / "out", progress=False).manifest.to_json()
    assert m["sources"]["s"]["contaminated"] == {"usmle": 1}
    usmle = m["decontamination"]["benchmarks"]["usmle"]
    assert usmle["removed"] == {
        "usmle_step1:image_field": 1,
        "usmle_step1:image_listed": 1,
        "usmle_step1:no_options": 1,
    }
    assert (usmle["questions"], usmle["unscored"]) == (5, 3)  # every question is indexed, scored or not


# --------------------------------------------------------------------------- offline and on failure


def test_a_dry_run_that_cannot_check_a_url_fails_and_says_why(workdir):
    recipe = url_recipe(workdir, "https://meadow-test.invalid/data.tar")
    report = fetch(recipe, dry_run=True, progress=False, net=FAST)
    item = one(report)
    assert item.status == "error" and "would download" not in item.detail
    assert "cannot reach meadow-test.invalid" in item.detail and "not checked" in item.detail
    assert report.problem() == "1 file(s) could not be checked (see above): the plan is incomplete"
    assert not (workdir / "data").exists()


def test_a_dry_run_lists_an_archive_two_entries_share_once(workdir, server, files):
    # v1's MMLU tarball: the mmlu source unpacks dev/val, the mmlu_test benchmark the test CSVs
    files["/data.tar"] = make_tar({"data/dev/anatomy_dev.csv": b"q,a,b,c,d,A\n"})
    tar = {"kind": "url", "url": f"{server.url}/data.tar", "extract": True}
    recipe = workdir / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {"mmlu": {"loader": "mmlu", "path": "data/raw/mmlu/x.csv", "fetch": tar}},
                "benchmarks": {"mmlu_test": {"kind": "mmlu", "path": "data/raw/t/x.csv", "fetch": tar}},
            }
        ),
        encoding="utf-8",
    )
    report = fetch(recipe, dry_run=True, progress=False, net=FAST)
    first, second = report.items
    assert (first.status, second.status) == ("would download", "would copy")
    assert first.size == second.size == len(files["/data.tar"])
    assert first.detail.endswith("; also for mmlu_test/data.tar")
    assert second.detail == "the same file as mmlu/data.tar, downloaded once"
    assert report.problem() is None and len(server.seen) == 1  # one HEAD
    result = CliRunner().invoke(app, ["fetch", str(recipe), "--dry-run"])
    assert result.exit_code == 0 and "1 file(s) to download" in result.output, result.output


def test_source_md_names_only_the_files_fetched(workdir, server, files):
    files["/f.bin"] = DATA
    recipe = write_recipe(
        workdir,
        {
            "s": {
                "loader": "cord19",
                "path": "data/raw/s/f.bin",
                "fetch": [
                    {"kind": "url", "url": f"{server.url}/f.bin"},
                    {"kind": "url", "url": "https://meadow-test.invalid/g.bin"},
                ],
            }
        },
    )
    report = fetch(recipe, progress=False, net=FAST)
    assert [i.status for i in report.items] == ["downloaded", "error"]
    card = (workdir / "data/raw/s" / SOURCE_CARD).read_text()
    assert f"{server.url}/f.bin" in card and "meadow-test.invalid" not in card
    assert not (workdir / "data/raw/s/g.bin").exists()
    assert set(json.loads((workdir / "data/raw" / LOCK_NAME).read_text())["files"]) == {"s/f.bin"}
    assert report.problem() == (
        "1 download(s) failed, 0 file(s) need a manual download (see above); "
        f"the 1 file(s) in place are verified and recorded in {report.lock_path}"
    )
