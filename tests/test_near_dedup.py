"""Near-duplicate removal (meadow/near_dedup.py and its step in `meadow build`).

The builds run on real fixture files (../shared/fixtures/raw, copied or sliced into tmp_path)
and on copies of real records with planted edits. The expected outcome comes from a plain
reference: Python sets of word 5-grams, exact Jaccard, the greedy pass in (source, rank) order.
"""

import itertools
import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash

from meadow.build import build
from meadow.build.sample import rank
from meadow.errors import MeadowError
from meadow.quality.near_dedup import NearDedupIndex, Shingler, candidate_probability, lsh_bands, words
from meadow.records import Record
from meadow.schemas.outputs import DROPPED_NAME, JSON_NAME, MANIFEST_NAME, PARQUET_NAME
from meadow.schemas.recipe import load_recipe

WIKIDOC = "wikidoc/medical_meadow_small.first200.json"
CHATDOCTOR = "chatdoctor/chatdoctor5k.GenMedGPT-5k.first200.json"
SEED = 7

# The near-duplicate pairs (Jaccard >= 0.8) of the 200-record WikiDoc patient-information
# slice, checked by hand: template pages that differ only in the disease's name.
WIKIDOC_PAIRS = {
    # "Who is at highest risk for Angina ?" / "... Angina pectoris ?": same answer (0.98)
    ("6e4f944d2c2190cc", "9716ca1a058a726a"),
    # "What are symptoms of Angina?" / "... angina pectoris?": same answer (0.94)
    ("c5da5de5f0b81934", "d839134361ddee39"),
    # "When to seek urgent medical care when I have Angina (pectoris) ?" (0.91)
    ("e6e8fc158f5165c4", "bc71934f1e87d7f1"),
    # symptoms of "Acute aortic syndrome" / "Aortic dissection": the name swapped (0.84)
    ("1e0173acb90686fe", "cd1f4d58f2538d7f"),
    # "What to expect before Aortic valve surgery (minimally invasive)" / "(open)" (0.81)
    ("b356e742a9b4af3b", "c57f3576701119a0"),
}
# Below the threshold, and so kept: the same aortic pages' causes (0.78) and outlook (0.73).
WIKIDOC_BELOW = {("f9288477881648ae", "e087bbfc6ffcea29"), ("a7993dc3f5a9c57e", "53ad8c3a34025188")}


def ref_shingles(r: dict, k: int = 5) -> set[tuple[str, ...]]:
    ws: list[str] = []
    for i, text in enumerate((r["instruction"], r["input"], r["output"])):
        ws += ["|"] * (i > 0) + re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())
    ws += ["#"] * (k - len(ws))
    return {tuple(ws[i : i + k]) for i in range(len(ws) - k + 1)}


def ref_jaccard(a: dict, b: dict) -> float:
    x, y = ref_shingles(a), ref_shingles(b)
    return len(x & y) / len(x | y)


def ref_greedy(sources: list[tuple[str, list[dict], int | None]], threshold: float = 0.8) -> dict:
    """source -> (kept ids, {dropped id: kept id}) by the plain greedy pass (no oversample limit)."""
    kept_all: list[dict] = []
    out = {}
    for name, rows, n in sources:
        kept, dropped = [], {}
        for r in sorted(rows, key=lambda r: (rank(SEED, r["id"]), r["id"])):
            if n is not None and len(kept) >= n:
                break
            match = [k for k in kept_all if ref_jaccard(r, k) >= threshold]
            if match:
                dropped[r["id"]] = max(match, key=lambda k: ref_jaccard(r, k))["id"]
            else:
                kept.append(r)
                kept_all.append(r)
        out[name] = ({r["id"] for r in kept}, dropped)
    return out


def recipe(tmp_path: Path, body: str, near: str = "near_dedup: true\n", name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(f"name: nd\nseed: {SEED}\noutput_dir: {tmp_path / 'out'}\n{near}{body}")
    return p


def qa_source(name: str, path: Path, n: int | str = "all") -> str:
    """A recipe source reading medAlpaca-format JSON (the WikiDoc loader: content-hash ids)."""
    return (
        f"  {name}:\n    loader: wikidoc\n    path: {path}\n    n: {n}\n"
        "    options: {kind: patient_information}\n"
    )


def write_qa(path: Path, rows: list[dict]) -> list[dict]:
    """Write rows as medAlpaca JSON; returns them with the ids the loader gives them."""
    path.write_text(json.dumps([{k: r[k] for k in ("instruction", "input", "output")} for r in rows]))
    from meadow.sources import get

    spec = get("wikidoc")
    loaded = [x for x in spec.load([path], spec.options(kind="patient_information")) if isinstance(x, Record)]
    return [{**r.to_alpaca()} for r in loaded]


def planted(base: dict) -> dict[str, dict]:
    """Copies of ``base`` with a word changed, case and punctuation changed, a sentence appended."""
    words_ = base["output"].split(" ")
    words_[len(words_) // 2] = "zebra"
    return {
        "word": {**base, "output": " ".join(words_)},
        "case": {**base, "output": base["output"].upper().replace(".", " !").replace(",", ";")},
        "append": {
            **base,
            "output": base["output"] + " Please see your doctor again if it does not improve.",
        },
    }


@pytest.fixture
def chatdoctor(raw_fixtures) -> list[dict]:
    return json.loads((raw_fixtures / CHATDOCTOR).read_text())


def outputs(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in (JSON_NAME, PARQUET_NAME, "README.md", DROPPED_NAME)}


# ---------------------------------------------------------------------------------------- units


def test_signatures_equal_datasketch_minhash(raw_fixtures):
    rows = json.loads((raw_fixtures / WIKIDOC).read_text())[:40]
    records = [Record(**r, source="t", id=f"t:{i}") for i, r in enumerate(rows)]
    shingler = Shingler(5, 128)
    sets = shingler.shingles(records)
    signatures = shingler.signatures(sets)
    for record, shingles, signature in zip(records, sets, signatures, strict=True):
        assert np.array_equal(shingler.shingles([record])[0], shingles)  # batch == one at a time
        m = MinHash(num_perm=128, seed=1, scheme="affine32", hashfunc=int)
        m.update_batch([(int(v) ^ (int(v) >> 32)) & 0xFFFFFFFF for v in shingles])
        assert np.array_equal(m.hashvalues, signature)
        assert len(shingles) == len(ref_shingles(record.model_dump()))


def test_words_ignore_case_punctuation_and_spacing():
    a = Record(instruction="Q", input="What is  Angina?", output="Chest pain, mostly.", source="t", id="t:a")
    b = Record(instruction="q", input="what is angina", output="CHEST PAIN -- mostly!", source="t", id="t:b")
    assert words(a) == words(b) == ["q", "\x1f", "what", "is", "angina", "\x1f", "chest", "pain", "mostly"]


def test_lsh_bands_aim_at_recall_at_the_threshold():
    assert lsh_bands(0.8, 128) == (18, 7)
    for threshold, num_perm in itertools.product((0.5, 0.7, 0.8, 0.9, 0.95), (64, 128, 256)):
        b, r = lsh_bands(threshold, num_perm)
        assert b * r <= num_perm
        assert candidate_probability(threshold, b, r) >= 0.95
        if r < num_perm:  # one more row per band would miss the recall
            assert candidate_probability(threshold, num_perm // (r + 1), r + 1) < 0.95


def test_index_keeps_the_first_copy_and_ignores_textless_records():
    index = NearDedupIndex(0.8, 5, 128)
    base = Record(instruction="i", output=" ".join(f"w{i}" for i in range(60)), source="t", id="t:0")
    copy = base.model_copy(update={"id": "t:1", "output": base.output.upper()})
    empty1 = Record(instruction="?", output="!!", source="t", id="t:2")  # no word at all
    empty2 = empty1.model_copy(update={"id": "t:3", "output": "?!"})
    kept, near = index.select(
        "s", [(i, r.id, None, r) for i, r in enumerate((base, copy, empty1, empty2))], None
    )
    assert [e[1] for e in kept] == ["t:0", "t:2", "t:3"]
    assert [(d.record.id, d.of_id, d.of_source, d.similarity) for d in near] == [("t:1", "t:0", "s", 1.0)]
    assert index.info()["pairs"] == {"s <- s": 1}


def test_a_chain_in_one_batch_compares_with_kept_records_only():
    # A ~ B (0.84) and B ~ C (0.84) but A !~ C (0.70), all in one batch: B goes as A's copy, and C,
    # compared with the records kept (A), not with B, stays. Copies of a row earlier in the batch
    # are found by sorting the batch's band keys (NearDedupIndex._batch_pairs).
    ws = [f"w{i}" for i in range(60)]
    a = Record(instruction="i", output=" ".join(ws), source="t", id="t:a")
    b = a.model_copy(
        update={"id": "t:b", "output": " ".join(["x" if i == 10 else w for i, w in enumerate(ws)])}
    )
    c_words = ["x" if i == 10 else "y" if i == 40 else w for i, w in enumerate(ws)]
    c = a.model_copy(update={"id": "t:c", "output": " ".join(c_words)})
    d = c.model_copy(update={"id": "t:d", "output": c.output.upper()})  # C's copy, two rows later
    index = NearDedupIndex(0.8, 5, 128)
    kept, near = index.select("s", [(i, r.id, None, r) for i, r in enumerate((a, b, c, d))], None)
    assert [e[1] for e in kept] == ["t:a", "t:c"]
    assert [(x.record.id, x.of_id, round(x.similarity, 2)) for x in near] == [
        ("t:b", "t:a", 0.84),
        ("t:d", "t:c", 1.0),
    ]


# --------------------------------------------------------------------------------------- builds


def test_planted_near_duplicates_across_and_within_sources(tmp_path, chatdoctor):
    bases, others = chatdoctor[:2], chatdoctor[2:60]
    first = write_qa(tmp_path / "first.json", [bases[0], *others[:20]])
    variants0 = planted(bases[0])
    variants1 = planted(bases[1])
    second = write_qa(
        tmp_path / "second.json", [*variants0.values(), bases[1], *variants1.values(), *others[20:]]
    )
    body = (
        "sources:\n"
        + qa_source("first", tmp_path / "first.json")
        + qa_source("second", tmp_path / "second.json")
    )
    result = build(recipe(tmp_path, body), progress=False)
    m = result.manifest.to_json()
    rows = json.loads((result.out_dir / JSON_NAME).read_text())
    ids = {r["id"] for r in rows}

    v0 = {k: next(r["id"] for r in second if r["output"] == v["output"]) for k, v in variants0.items()}
    cluster1 = [r for r in second if r["input"] == bases[1]["input"]]
    assert len(cluster1) == 4
    # across sources: every planted copy of base 0 is a near duplicate of the first source's record
    assert first[0]["id"] in ids and not ids & set(v0.values())
    # within a source: the copy of base 1 with the lowest rank is kept, the other three dropped
    best = min(cluster1, key=lambda r: (rank(SEED, r["id"]), r["id"]))
    assert [r["id"] for r in cluster1 if r["id"] in ids] == [best["id"]]

    s1, s2 = m["sources"]["first"], m["sources"]["second"]
    assert s1["near_duplicates"] == 0 and s1["near_duplicate_of"] == {}
    assert s2["near_duplicates"] == 6 and s2["near_duplicate_of"] == {"first": 3, "second": 3}
    assert m["near_dedup"]["pairs"] == {"first <- second": 3, "second <- second": 3}
    for s in (s1, s2):
        assert s["read"] == s["dropped_total"] + s["duplicates"] + s["near_duplicates"] + s["unique"]
        assert s["sampled"] == s["unique"]
    assert m["totals"]["near_duplicates"] == 6
    assert {k: m["near_dedup"][k] for k in ("threshold", "shingle", "num_perm", "oversample")} == {
        "threshold": 0.8,
        "shingle": 5,
        "num_perm": 128,
        "oversample": 0.1,
    }
    # the same outcome as the plain reference, and each drop names what it duplicates
    expected = ref_greedy([("first", first, None), ("second", second, None)])
    assert ids == expected["first"][0] | expected["second"][0]
    samples = json.loads((result.out_dir / DROPPED_NAME).read_text())["second"]["near_duplicate"]
    assert len(samples) == 5  # the five lowest-ranked of the six
    for row in samples:
        kept_id = expected["second"][1][row["id"]]
        assert row["detail"].startswith(f"{kept_id} (")
    assert {r["id"] for r in samples} <= set(expected["second"][1])


def test_no_false_positives_on_real_fixture_data(tmp_path, raw_fixtures):
    """WikiDoc: exactly the five template pairs above; ChatDoctor: none; the PubMed causal and
    health-advice sets share sentences but ask different questions: none."""
    body = (
        "sources:\n"
        + qa_source("wikidoc", raw_fixtures / WIKIDOC)
        + f"  chatdoctor:\n    loader: chatdoctor\n    path: {raw_fixtures / CHATDOCTOR}\n"
        + f"  causal:\n    loader: pubmed_causal\n    path: {raw_fixtures}/pubmed_causal/*.csv\n"
        + f"  advice:\n    loader: pubmed_health_advice\n    path: {raw_fixtures}/pubmed_health_advice/*\n"
    )
    result = build(recipe(tmp_path, body), progress=False)
    m = result.manifest.to_json()
    assert m["near_dedup"]["pairs"] == {"wikidoc <- wikidoc": 5}
    assert all(m["sources"][s]["near_duplicates"] == 0 for s in ("chatdoctor", "causal", "advice"))
    rows = json.loads((result.out_dir / JSON_NAME).read_text())
    kept = {r["id"].split(":")[1] for r in rows if r["id"].startswith("wikidoc/")}
    for a, b in WIKIDOC_PAIRS:
        assert (a in kept) != (b in kept), (a, b)  # one of each pair, the lower-ranked
        winner = min((a, b), key=lambda h: rank(SEED, f"wikidoc/patient_information:{h}"))
        assert winner in kept
    for a, b in WIKIDOC_BELOW:
        assert a in kept and b in kept
    assert len(kept) == 195
    # the reference agrees: only these pairs reach 0.8 in this slice
    wiki = [r for r in json.loads((raw_fixtures / WIKIDOC).read_text())]
    sets = [ref_shingles(r) for r in wiki]
    high = sum(len(x & y) / len(x | y) >= 0.8 for x, y in itertools.combinations(sets, 2))
    assert high == len(WIKIDOC_PAIRS)


def test_two_builds_and_reversed_rows_are_identical(tmp_path, chatdoctor):
    rows = [*chatdoctor[:80], *planted(chatdoctor[0]).values(), *planted(chatdoctor[5]).values()]
    results = []
    for k, order in enumerate((rows, rows[::-1])):
        path = tmp_path / f"in{k}" / "rows.json"  # the same file name: it goes into each record's meta
        path.parent.mkdir()
        loaded = write_qa(path, order)
        r = recipe(tmp_path, "sources:\n" + qa_source("chat", path, n=60), name=f"r{k}.yaml")
        for again in range(2 - k):
            results.append(build(r, output_dir=tmp_path / f"out{k}{again}", progress=False))
    same, again, reversed_ = (outputs(r.out_dir) for r in results)
    assert same == again  # the card too (it names the recipe file)
    del same["README.md"], reversed_["README.md"]
    assert same == reversed_
    kept, dropped = ref_greedy([("chat", loaded, 60)])["chat"]
    assert results[0].manifest.to_json()["sources"]["chat"]["near_duplicates"] == len(dropped) > 0
    assert {r["id"] for r in json.loads(results[0].out_dir.joinpath(JSON_NAME).read_text())} == kept
    assert results[0].records == 60


def test_n_is_kept_after_near_dedup_with_the_oversample_margin(tmp_path, raw_fixtures):
    rows = write_qa(tmp_path / "w.json", json.loads((raw_fixtures / WIKIDOC).read_text()))
    body = "sources:\n" + qa_source("w", tmp_path / "w.json", n=190)
    m = build(recipe(tmp_path, body), progress=False).manifest.to_json()
    s = m["sources"]["w"]
    # 190 * 1.1 = 209 candidates: all 200 records are looked at, the 5 near duplicates replaced
    assert s["sampled"] == 190 and s["near_duplicates"] == 5 and "near_dedup_short" not in s
    kept, _ = ref_greedy([("w", rows, 190)])["w"]
    out = json.loads((tmp_path / "out" / "nd" / JSON_NAME).read_text())
    assert {r["id"] for r in out} == kept

    # without a margin the near duplicates among the 197 candidates leave the source short,
    # and the manifest says so
    body = "sources:\n" + qa_source("w", tmp_path / "w.json", n=197)
    near = "near_dedup: {oversample: 0}\n"
    s = build(recipe(tmp_path, body, near=near), progress=False).manifest.to_json()["sources"]["w"]
    candidates = sorted(rows, key=lambda r: (rank(SEED, r["id"]), r["id"]))[:197]
    found = len(ref_greedy([("w", candidates, None)])["w"][1])
    assert found > 0
    assert s["near_duplicates"] == found and s["sampled"] == 197 - found
    assert s["near_dedup_short"] == found
    assert s["read"] == s["dropped_total"] + s["duplicates"] + s["near_duplicates"] + s["unique"]


def test_later_sources_only_see_records_in_the_output(tmp_path, chatdoctor):
    """A record trimmed from an earlier source (beyond its n) is no reason to drop a later copy."""
    first = write_qa(tmp_path / "a.json", chatdoctor[:30])
    write_qa(tmp_path / "b.json", [planted(r)["word"] for r in chatdoctor[:30]])
    body = "sources:\n" + qa_source("a", tmp_path / "a.json", n=10) + qa_source("b", tmp_path / "b.json")
    m = build(recipe(tmp_path, body), progress=False).manifest.to_json()
    assert m["sources"]["a"]["sampled"] == 10
    assert m["sources"]["b"]["near_duplicates"] == 10 and m["sources"]["b"]["sampled"] == 20
    assert m["near_dedup"]["pairs"] == {"a <- b": 10}
    assert len(first) == 30


def test_old_recipes_and_switches(tmp_path, raw_fixtures):
    src = qa_source("w", raw_fixtures / WIKIDOC)
    for near in (
        "",
        "dedup: exact\n",
        "near_dedup: false\n",
        "near_dedup: {enabled: false, threshold: 0.5}\n",
    ):
        r = recipe(tmp_path, "sources:\n" + src, near=near)
        m = build(r, progress=False).manifest.to_json()
        assert "near_dedup" not in m and "near_duplicates" not in m["sources"]["w"], near
        assert "near_duplicates" not in m["totals"]
        assert m["sources"]["w"]["sampled"] == 200
    settings = load_recipe(recipe(tmp_path, "sources:\n" + src, near="near_dedup: {threshold: 0.9}\n"))
    assert settings.near_dedup is not None and settings.near_dedup.enabled
    assert (settings.near_dedup.threshold, settings.near_dedup.shingle) == (0.9, 5)
    bad = recipe(tmp_path, "sources:\n" + src, near="near_dedup:\n  treshold: 0.9\n", name="bad.yaml")
    with pytest.raises(MeadowError, match=r"bad\.yaml:5: near_dedup\.treshold: unknown key"):
        load_recipe(bad)
    bad.write_text(bad.read_text().replace("treshold: 0.9", "threshold: 1.5"))
    with pytest.raises(MeadowError, match=r"near_dedup\.threshold: Input should be less than or equal to 1"):
        load_recipe(bad)


def test_cli_summary_has_the_near_dup_column(tmp_path, raw_fixtures):
    from typer.testing import CliRunner

    from meadow.cli import app

    r = recipe(tmp_path, "sources:\n" + qa_source("w", raw_fixtures / WIKIDOC))
    res = CliRunner().invoke(app, ["build", str(r)])
    assert res.exit_code == 0, res.output
    assert "near dups" in res.output and "near dedup:" in res.output
    manifest = json.loads((tmp_path / "out" / "nd" / MANIFEST_NAME).read_text())
    assert manifest["near_dedup"]["seconds"] >= 0
