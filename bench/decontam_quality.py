"""Precision and recall of decontamination on exam text: planted leaks against exam-style non-leaks.

The questions are real: MMLU dev/val of the six medical subjects (../shared/fixtures/raw/mmlu, 153
rows; professional_medicine's are USMLE-style vignettes), plus examples/medqa and examples/usmle.
Questions whose normalised text repeats are kept once (two MMLU questions are in two subjects).
They are split into ten folds by a hash of their id. For each fold, the other nine are the
benchmark (indexed as the build indexes a recipe's benchmarks) and:

- non-leaks: the fold's own questions as training records, as the ``mmlu`` source frames them
  (question and lettered options, answer) and as a bare question with its answer (a rephrased
  flashcard). Exam text through and through: stock stems, option lists, vignette openings;
- leaks: the questions of the next fold (indexed here) planted in seven variants:
  ``verbatim`` (the mmlu source's framing), ``options_reformatted`` (another instruction, options
  as ``(a) ...``, a dict or a list), ``case_punctuation`` (case, punctuation and hyphens changed),
  ``inside_text`` (question and options between two unrelated ChatDoctor answers), ``last_60pct``
  (the last 60% of the words of a question of 30 words or more, nothing else), ``short_verbatim``
  (a question of fewer than 13 words, verbatim as the input, its answer as output) and
  ``one_in_ten`` (every tenth word of the question replaced; report only, no goal).

A leak counts as found when the record is dropped; ``right item`` says how many were credited to
the planted question. Precision of a variant: its leaks found / (found + non-leaks dropped).
The vignette split repeats the ten folds on the vignettes only (questions of 25 words or more):
the "one tenth against the other nine tenths" false-positive rate of a MedQA-style test split.

Goal (issue #14): <= 2% of the non-leaks dropped (of each set); recall >= 99% on the first four variants,
>= 90% on last_60pct, >= 95% on short_verbatim.

    python bench/decontam_quality.py [--fixtures ../shared/fixtures/raw] [--show-false-positives]

Prints one JSON report; the figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import platform
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meadow.benchmarks import load_benchmark
from meadow.quality.decontaminate import Benchmark, Index
from meadow.records import Record
from meadow.schemas.quality import DecontaminateSettings
from meadow.text import words

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared/fixtures/raw"
FOLDS = 10
VARIANTS = (
    "verbatim",
    "options_reformatted",
    "case_punctuation",
    "inside_text",
    "last_60pct",
    "short_verbatim",
    "one_in_ten",
)
GOALS = {
    "verbatim": 0.99,
    "options_reformatted": 0.99,
    "case_punctuation": 0.99,
    "inside_text": 0.99,
    "last_60pct": 0.90,
    "short_verbatim": 0.95,
}
MAX_FALSE_POSITIVE_RATE = 0.02
LONG_WORDS = 30  # last_60pct: questions of at least this many words
VIGNETTE_WORDS = 25  # the vignette split: questions of at least this many words
SHORT_BELOW = 13  # short_verbatim: fewer normalised words than this (the default short_below)
SUBSTITUTES = ("certain", "several", "notable", "various", "typical", "usual", "marked", "overall")

log = logging.getLogger("decontam_quality")


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    options: list[str]
    answer: str
    source: str


@dataclass(frozen=True)
class Case:
    record: Record
    variant: str  # "non_leak" or one of VARIANTS
    item: str  # the planted (or held-out) question's id


def load_items(fixtures: Path) -> list[Item]:
    specs = [
        ("mmlu", f"mmlu:{fixtures}/mmlu/*/*.csv"),
        ("medqa", f"medqa:{REPO}/examples/medqa/US/*.jsonl"),
        ("usmle", f"usmle:{REPO}/examples/usmle/step1.json"),
    ]
    items: list[Item] = []
    seen: set[str] = set()
    for source, spec in specs:
        for q in load_benchmark(spec).questions:
            key = " ".join(words(q.question + " " + " ".join(q.options.values())))
            if key in seen:
                continue
            seen.add(key)
            items.append(Item(q.id, q.question, list(q.options.values()), q.options[q.answer], source))
    return items


SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"\u201c])")
SYMPTOMS = (
    "fever",
    "cough",
    "fatigue",
    "headache",
    "nausea",
    "vomiting",
    "abdominal pain",
    "chest pain",
    "shortness of breath",
    "diarrhea",
    "joint pain",
    "back pain",
    "weight loss",
    "dizziness",
    "palpitations",
    "rash",
    "sore throat",
    "blurred vision",
    "confusion",
    "swelling of the legs",
)
SETTINGS = (
    "comes to the emergency department",
    "is brought to the emergency department",
    "comes to the physician",
    "comes to the office",
)
CLOSERS = (  # MedQA's stock final questions
    "Which of the following is the most likely diagnosis?",
    "Which of the following is the most appropriate next step in management?",
    "Which of the following is the most likely cause of this patient's symptoms?",
    "Which of the following is the most appropriate pharmacotherapy?",
    "Which of the following is the most likely underlying mechanism of this patient's condition?",
    "Which of the following is the most appropriate initial step in management?",
)


def built_vignettes(vignettes: list[Item], seed: int = 14) -> list[Item]:
    """MedQA-style questions built from the real vignettes' sentences and MedQA's stock phrases.

    Each has a templated opening ("A 45-year-old man comes to the emergency department because of
    a 3-day history of fever and cough."), two sentences from the middle of real vignettes (each
    sentence used once), often a templated vital-signs line, a stock closing question and five
    options drawn from the real ones of up to four words (diagnoses, drugs, tests): new questions
    that share only stock text with each other and with the real vignettes, as the questions of one
    MedQA test split do.
    """
    rng = random.Random(seed)
    middles = [s for it in vignettes for s in SENTENCE.split(it.question)[1:-1] if len(s.split()) >= 6]
    rng.shuffle(middles)
    pool = sorted({o for it in vignettes for o in it.options if len(o.split()) <= 4})  # MedQA's are short
    out = []
    for k in range(len(middles) // 2):
        man = rng.random() < 0.5
        symptoms = rng.sample(SYMPTOMS, rng.choice((1, 2)))
        duration = f"{rng.randint(1, 7)}-{rng.choice(('day', 'week', 'month'))}"
        parts = [
            f"A {rng.randint(18, 85)}-year-old {'man' if man else 'woman'} {rng.choice(SETTINGS)} because of "
            f"a {duration} history of {' and '.join(symptoms)}.",
            *middles[2 * k : 2 * k + 2],
        ]
        if rng.random() < 0.7:
            celsius = rng.randint(365, 395) / 10
            parts.append(
                f"{'His' if man else 'Her'} temperature is {celsius:.1f}°C ({celsius * 9 / 5 + 32:.1f}°F), "
                f"pulse is {rng.randint(60, 130)}/min, respirations are {rng.randint(12, 28)}/min, and blood "
                f"pressure is {rng.randint(95, 170)}/{rng.randint(55, 100)} mm Hg."
            )
        parts.append(rng.choice(CLOSERS))
        options = rng.sample(pool, 5)
        out.append(Item(f"built:{k}", " ".join(parts), options, options[0], "built"))
    return out


def fold_of(item: Item) -> int:
    return int.from_bytes(hashlib.sha256(item.id.encode()).digest()[:4], "big") % FOLDS


def unrelated_texts(fixtures: Path) -> list[str]:
    rows = json.loads((fixtures / "chatdoctor/chatdoctor5k.GenMedGPT-5k.first200.json").read_text())
    return [r["output"] for r in rows if len(r["output"].split()) >= 40]


def record(instruction: str, input_: str, output: str, id_: str) -> Record:
    return Record(instruction=instruction, input=input_, output=output, source="bench", id=id_)


def lettered(options: list[str]) -> str:
    return "\n".join(f"{chr(65 + i)}: {o}" for i, o in enumerate(options))


def mmlu_framing(item: Item, id_: str) -> Record:
    """As meadow.sources.mmlu writes a question."""
    letter = chr(65 + item.options.index(item.answer))
    return record(
        "Answer the following multiple choice question.",
        f"{item.question}\n{lettered(item.options)}",
        f"{letter}: {item.answer}",
        id_,
    )


def reformatted(item: Item, n: int, id_: str) -> Record:
    opts = item.options
    layouts = [
        " ".join(f"({chr(97 + i)}) {o}" for i, o in enumerate(opts)),
        repr({chr(65 + i): o for i, o in enumerate(opts)}),
        "Options:\n" + "\n".join(f"- {o}" for o in opts),
        "; ".join(f"{chr(65 + i)}) {o}" for i, o in enumerate(opts)),
    ]
    return record(
        "Please answer with one of the options below.",
        f"Q: {item.question}\n{layouts[n % len(layouts)]}",
        item.answer,
        id_,
    )


def case_punctuation(item: Item, n: int, id_: str) -> Record:
    text = f"{item.question}\n{lettered(item.options)}"
    text = re.sub(r"[,;:?!()]", " ", text).replace("-", " ").replace(".", " . ")
    text = text.upper() if n % 2 else text.lower()
    return record("ANSWER THIS:", text, item.answer, id_)


def inside_text(item: Item, texts: list[str], n: int, id_: str) -> Record:
    before, after = texts[n % len(texts)], texts[(n * 7 + 3) % len(texts)]
    return record(
        "Summarise the notes.",
        f"{before}\n\nFrom the quiz: {item.question} {' / '.join(item.options)}\n\n{after}",
        "They describe a consultation.",
        id_,
    )


def last_60pct(item: Item, id_: str) -> Record:
    ws = item.question.split()
    return record("Continue the case.", " ".join(ws[len(ws) - round(0.6 * len(ws)) :]), item.answer, id_)


def one_in_ten(item: Item, id_: str) -> Record:
    ws = item.question.split()
    changed = [SUBSTITUTES[i // 10 % len(SUBSTITUTES)] if i % 10 == 5 else w for i, w in enumerate(ws)]
    return record(
        "Answer the following multiple choice question.",
        f"{' '.join(changed)}\n{lettered(item.options)}",
        item.answer,
        id_,
    )


def leaks(item: Item, texts: list[str], n: int) -> Iterable[Case]:
    def case(variant: str, r: Record) -> Case:
        return Case(r, variant, item.id)

    yield case("verbatim", mmlu_framing(item, f"leak:verbatim:{n}"))
    yield case("options_reformatted", reformatted(item, n, f"leak:options:{n}"))
    yield case("case_punctuation", case_punctuation(item, n, f"leak:case:{n}"))
    yield case("inside_text", inside_text(item, texts, n, f"leak:inside:{n}"))
    if len(item.question.split()) >= LONG_WORDS:
        yield case("last_60pct", last_60pct(item, f"leak:last60:{n}"))
    if len(words(item.question)) < SHORT_BELOW:
        yield case(
            "short_verbatim", record("Answer this question.", item.question, item.answer, f"short:{n}")
        )
    if len(item.question.split()) >= 10:
        yield case("one_in_ten", one_in_ten(item, f"leak:ten:{n}"))


def non_leaks(item: Item, n: int) -> Iterable[Case]:
    yield Case(mmlu_framing(item, f"clean:mmlu:{n}"), "non_leak", item.id)
    yield Case(record(item.question, "", item.answer, f"clean:bare:{n}"), "non_leak", item.id)


@dataclass
class Tally:
    cases: Counter[str]
    found: Counter[str]
    right_item: Counter[str]
    false_positives: list[dict]
    seconds: float = 0.0
    records: int = 0
    coverages: dict[str, list[float]] = field(default_factory=dict)
    """variant -> each record's highest coverage of any question, whatever the threshold"""


def run_folds(
    items: list[Item], settings: DecontaminateSettings, texts: list[str], with_leaks: bool = True
) -> Tally:
    folds: list[list[Item]] = [[] for _ in range(FOLDS)]
    for item in items:
        folds[fold_of(item)].append(item)
    tally = Tally(Counter(), Counter(), Counter(), [])
    numbers = itertools.count()
    for f in range(FOLDS):
        indexed = [it for g, fold in enumerate(folds) if g != f for it in fold]
        index = Index(
            settings, [Benchmark("bench", "mmlu", [], [(it.id, it.question, it.options) for it in indexed])]
        )
        cases = [c for it in folds[f] for c in non_leaks(it, next(numbers))]
        if with_leaks:
            cases += [c for it in folds[(f + 1) % FOLDS] for c in leaks(it, texts, next(numbers))]
        started = time.perf_counter()
        hits = [index.match(c.record) for c in cases]
        tally.seconds += time.perf_counter() - started
        tally.records += len(cases)
        if "coverage" in DecontaminateSettings.model_fields:  # the coverage rule (#14): its margins
            probe = Index(settings.model_copy(update={"coverage": 1e-9}), index.benchmarks.values())
            for c in cases:
                hit = probe.match(c.record)
                tally.coverages.setdefault(c.variant, []).append(0.0 if hit is None else hit.coverage)
        for c, hit in zip(cases, hits, strict=True):
            tally.cases[c.variant] += 1
            if hit is None:
                continue
            tally.found[c.variant] += 1
            tally.right_item[c.variant] += hit.item_id == c.item
            if c.variant == "non_leak":
                by_id = {it.id: it for it in indexed}
                tally.false_positives.append(
                    {
                        "record": (c.record.instruction + " | " + c.record.input)[:160],
                        "item": by_id[hit.item_id].question[:160],
                        "match": hit.match,
                        "coverage": getattr(hit, "coverage", None),  # the old rule's Hit has
                        "matched": [getattr(s, "text", s) for s in getattr(hit, "spans", [hit.text])],
                    }
                )
    return tally


def summary(tally: Tally) -> dict:
    fp = tally.found["non_leak"]
    negatives = tally.cases["non_leak"]
    out: dict = {
        "non_leaks": negatives,
        "non_leaks_dropped": fp,
        "false_positive_rate": round(fp / negatives, 4) if negatives else None,
        "variants": {},
    }
    for v in VARIANTS:
        total, found = tally.cases[v], tally.found[v]
        if not total:
            continue
        out["variants"][v] = {
            "leaks": total,
            "found": found,
            "right_item": tally.right_item[v],
            "recall": round(found / total, 4),
            "precision": round(found / (found + fp), 4) if found + fp else None,
            "goal": GOALS.get(v),
            "met": None if v not in GOALS else found / total >= GOALS[v],
        }
    out["records_per_second"] = round(tally.records / tally.seconds) if tally.seconds else None
    if tally.coverages:  # how far each set lies from the threshold
        out["coverage"] = {
            v: {
                "min": round(min(c), 3),
                "p05": round(float(np.quantile(c, 0.05)), 3),
                "median": round(float(np.median(c)), 3),
                "p95": round(float(np.quantile(c, 0.95)), 3),
                "max": round(max(c), 3),
            }
            for v, c in sorted(tally.coverages.items())
        }
    return out


def git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        return done.stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--show-false-positives", action="store_true")
    parser.add_argument(
        "--set", action="append", default=[], metavar="K=V", help="a decontaminate: setting, e.g. ngram=8"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    items = load_items(args.fixtures)
    texts = unrelated_texts(args.fixtures)
    settings = DecontaminateSettings.model_validate(dict(kv.split("=", 1) for kv in args.set))
    mixed = run_folds(items, settings, texts)
    vignettes = built_vignettes([it for it in items if len(it.question.split()) >= VIGNETTE_WORDS])
    split = run_folds(vignettes, settings, texts, with_leaks=False)
    report = {
        "commit": git_commit(),
        "machine": f"{platform.node()} ({platform.python_version()})",
        "settings": settings.model_dump(),
        "questions": len(items),
        "by_source": dict(Counter(it.source for it in items)),
        "all_questions": summary(mixed),
        "vignette_split": {
            "questions": len(vignettes),
            **{k: v for k, v in summary(split).items() if k != "variants"},
        },
    }
    rates = [t.found["non_leak"] / t.cases["non_leak"] for t in (mixed, split)]
    goals_met = all(r <= MAX_FALSE_POSITIVE_RATE for r in rates) and all(
        v["met"] is not False for v in report["all_questions"]["variants"].values()
    )
    report["goals_met"] = goals_met
    if args.show_false_positives:
        report["false_positives"] = mixed.false_positives + split.false_positives
    log_table(report)
    print(json.dumps(report, indent=1))


def log_table(report: dict) -> None:
    a, v = report["all_questions"], report["vignette_split"]
    log.info("| variant | leaks | found | right item | recall | precision | goal |")
    log.info("|---|---:|---:|---:|---:|---:|---|")
    for name, r in a["variants"].items():
        goal = "-" if r["goal"] is None else f">= {r['goal']:.0%} {'met' if r['met'] else 'MISSED'}"
        log.info(
            f"| {name} | {r['leaks']} | {r['found']} | {r['right_item']} | {r['recall']:.1%} | "
            f"{r['precision']:.1%} | {goal} |"
        )
    log.info(
        f"non-leaks dropped: {a['non_leaks_dropped']} of {a['non_leaks']} ({a['false_positive_rate']:.1%}); "
        f"vignette split, one tenth against nine: {v['non_leaks_dropped']} of {v['non_leaks']} "
        f"({v['false_positive_rate']:.1%}); goals met: {report['goals_met']}"
    )


if __name__ == "__main__":
    main()
