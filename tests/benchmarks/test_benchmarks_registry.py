"""The registry of benchmark kinds: a kind module dropped into the package is found and accepted by
recipes, eval specs and decontamination; an unknown kind names the known ones; specs are checked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from meadow import benchmarks
from meadow.benchmarks import load_benchmark, parse_spec
from meadow.errors import MeadowError
from meadow.quality import decontaminate
from meadow.records import Record
from meadow.schemas.benchmark import BenchmarkEntry
from meadow.schemas.recipe import load_recipe

BUILT_IN = ["medqa", "mmlu", "pubmedqa", "usmle"]

TOY = '''"""A toy benchmark kind: one yes/no question per line."""

from pathlib import Path

from meadow.benchmarks import Loaded, Options, make_question, register


class ToyOptions(Options):
    skip: int = 0


@register("toy", options=ToyOptions, summary="yes/no questions", license="CC0", citation="@misc{toy}")
def load(files: list[Path], options: ToyOptions) -> Loaded:
    loaded = Loaded()
    for path in files:
        for n, line in enumerate(path.read_text().splitlines()[options.skip :], 1):
            loaded.questions.append(
                make_question(
                    f"{path}:{n}", id=f"toy:{n}", benchmark="toy", question=line,
                    options={"A": "yes", "B": "no"}, answer="A",
                )
            )
    return loaded
'''

QUESTION = "Does the left recurrent laryngeal nerve loop under the arch of the aorta in adults?"


@pytest.fixture
def toy_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A module ``toy.py`` in a second folder of the package, registered on discovery only."""
    folder = tmp_path / "kinds"
    folder.mkdir()
    (folder / "toy.py").write_text(TOY, encoding="utf-8")
    benchmarks.registry()  # the built-in kinds registered before the registry is swapped for a copy
    monkeypatch.setattr(benchmarks, "__path__", [*benchmarks.__path__, str(folder)])
    monkeypatch.setattr(benchmarks, "_REGISTRY", dict(benchmarks._REGISTRY))
    yield
    sys.modules.pop("meadow.benchmarks.toy", None)
    if hasattr(benchmarks, "toy"):
        delattr(benchmarks, "toy")


def test_the_built_in_kinds_register_themselves():
    assert benchmarks.kinds() == BUILT_IN
    for name in BUILT_IN:
        kind = benchmarks.get(name)
        assert kind.name == name and kind.summary and kind.license and kind.citation
    assert "pubmedqa" in benchmarks.get("pubmedqa").citation


def test_a_new_kind_module_is_discovered_and_accepted_everywhere(toy_kind, tmp_path: Path):
    assert "toy" not in benchmarks._REGISTRY  # not imported yet: found by discovery
    assert benchmarks.kinds() == sorted([*BUILT_IN, "toy"])
    data = tmp_path / "toy.txt"
    data.write_text(f"header\n{QUESTION}\n", encoding="utf-8")

    loaded = load_benchmark(f"toy:{data}", skip=1)  # meadow eval
    assert [(q.id, q.question) for q in loaded.questions] == [("toy:1", QUESTION)]

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: x\nsources:\n  c: {{loader: cord19, path: a.csv}}\n"
        f"benchmarks:\n  t: {{kind: toy, path: {data}, skip: 1}}\n",
        encoding="utf-8",
    )
    entry = load_recipe(recipe).benchmarks["t"]
    assert (entry.license(), entry.citation()) == ("CC0", "@misc{toy}")
    assert entry.model_dump(mode="json") == {"kind": "toy", "path": str(data), "skip": 1, "fetch": []}

    decon = decontaminate.from_recipe(None, {"t": entry}, tmp_path)  # the build's decontamination
    hit = decon.check(Record(instruction=QUESTION, output="Yes.", source="s", id="s:1"))
    assert hit is not None and (hit.benchmark, hit.item_id) == ("t", "toy:1")


def test_an_option_of_another_kind_says_which_kind_it_applies_to(toy_kind):
    with pytest.raises(ValueError, match="'skip' applies to kind toy only"):
        BenchmarkEntry.model_validate({"kind": "mmlu", "path": "x", "skip": 1})
    with pytest.raises(ValueError, match="'subjects' applies to kind mmlu only"):
        BenchmarkEntry.model_validate({"kind": "toy", "path": "x", "subjects": ["anatomy"]})


def test_an_unknown_kind_names_the_known_ones(tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: x\nsources:\n  c: {loader: cord19, path: a.csv}\nbenchmarks:\n  b: {kind: medmcqa, path: x}\n",
        encoding="utf-8",
    )
    with pytest.raises(MeadowError) as err:
        load_recipe(recipe)
    assert (
        f"r.yaml:5: benchmarks.b.kind: unknown benchmark kind 'medmcqa'; known kinds: {', '.join(BUILT_IN)}"
        in str(err.value)
    )
    with pytest.raises(KeyError, match="known kinds: medqa, mmlu, pubmedqa, usmle"):
        benchmarks.get("medmcqa")


def test_options_are_checked_by_the_kind():
    mmlu = BenchmarkEntry.model_validate({"kind": "mmlu", "path": "x", "subjects": ["anatomy"]})
    assert mmlu.parsed_options().subjects == ["anatomy"]
    # the manifest shows the recipe as it always did: kind, path, the options (defaults filled), fetch
    assert list(BenchmarkEntry.model_validate({"kind": "mmlu", "path": "x"}).model_dump()) == [
        "kind",
        "path",
        "subjects",
        "fetch",
    ]
    with pytest.raises(ValueError, match="subjects\n  Input should be a valid list"):
        BenchmarkEntry.model_validate({"kind": "mmlu", "path": "x", "subjects": "anatomy"})
    with pytest.raises(ValueError, match="unknown\n  Extra inputs are not permitted"):
        BenchmarkEntry.model_validate({"kind": "medqa", "path": "x", "unknown": 1})
    # `subjects: null`, which older manifests show on every kind, still reads as not set
    assert BenchmarkEntry.model_validate({"kind": "medqa", "path": "x", "subjects": None}).model_extra == {}


@pytest.mark.parametrize("spec", ["mmlu", "nope:x", "mmlu:"])
def test_bad_spec(spec: str):
    with pytest.raises(MeadowError, match="KIND:PATH_OR_GLOB with KIND one of medqa, mmlu, pubmedqa, usmle"):
        parse_spec(spec)


def test_no_files(tmp_path: Path):
    with pytest.raises(MeadowError, match="no such file"):
        load_benchmark(f"mmlu:{tmp_path}/missing_*.csv")


def test_a_bad_option_in_a_spec_names_the_spec(tmp_path: Path):
    (tmp_path / "test.jsonl").write_text("{}\n")
    with pytest.raises(MeadowError, match=r"test\.jsonl.: medqa options: subjects: Extra inputs"):
        load_benchmark(f"medqa:{tmp_path}/test.jsonl", subjects=["anatomy"])
