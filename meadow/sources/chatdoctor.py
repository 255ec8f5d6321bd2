"""ChatDoctor: patient questions answered by doctors (GenMedGPT-5k, HealthCareMagic-100k, iCliniq-10k).

Format read: the JSON files published with ChatDoctor (github.com/Kent0n-Li/ChatDoctor),
a JSON array of objects (JSON Lines copies are read too), streamed record by record:

- GenMedGPT-5k (``chatdoctor5k.json``) and HealthCareMagic-100k (``HealthCareMagic-100k.json``):
  ``{"instruction", "input", "output"}``; the instruction is always ChatDoctor's fixed
  "If you are a doctor, please answer the medical questions based on the patient's description.",
  ``input`` is the patient's message, ``output`` the doctor's answer.
- iCliniq-10k (``iCliniq.json``): ``{"input", "answer_icliniq", "answer_chatgpt",
  "answer_chatdoctor"}``: the patient's message and three answers.

The layout is detected per record from its keys. Task framing (medAlpaca's ChatDoctor
subset): instruction = the record's instruction (for iCliniq, ChatDoctor's fixed
instruction above, option ``icliniq_instruction``), input = the patient's message,
output = the doctor's answer; for iCliniq the real doctor's answer ``answer_icliniq``
(option ``icliniq_answer`` picks ``chatgpt`` or ``chatdoctor`` instead).

Source: ``chatdoctor/<variant>`` (``genmedgpt_5k``, ``healthcaremagic_100k``, ``icliniq_10k``),
from option ``variant`` or else the file name (``chatdoctor5k``/``GenMedGPT``,
``HealthCareMagic``, ``iCliniq``); a file whose name says neither raises InputError unless
its records have the iCliniq keys. Id: a content hash of the patient's message and the
answer (upstream records have no id). medAlpaca used 10,000 ChatDoctor records:
subsampling is the recipe's ``n``, not this loader's.

Drops: ``empty_input`` (no patient message), the ``make_record`` checks (``empty_output``,
``too_long_*``), and malformed records: ``invalid_record`` (not an object, a field that
is not a string), ``missing_field``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from meadow.errors import InputError
from meadow.sources import Drop, Item, Options, register
from meadow.sources._common import content_id, iter_json_records, make_record

INSTRUCTION = "If you are a doctor, please answer the medical questions based on the patient's description."

Variant = Literal["genmedgpt_5k", "healthcaremagic_100k", "icliniq_10k"]
_NAMES: tuple[tuple[str, Variant], ...] = (
    ("healthcaremagic", "healthcaremagic_100k"),
    ("icliniq", "icliniq_10k"),
    ("genmedgpt", "genmedgpt_5k"),
    ("chatdoctor5k", "genmedgpt_5k"),
)
_ALPACA_KEYS = ("instruction", "input", "output")
_ICLINIQ_KEYS = ("input", "answer_icliniq", "answer_chatgpt", "answer_chatdoctor")

CITATION = """@article{li2023chatdoctor,
  title = {ChatDoctor: A Medical Chat Model Fine-Tuned on a Large Language Model Meta-AI ({LLaMA})
           Using Medical Domain Knowledge},
  author = {Li, Yunxiang and Li, Zihan and Zhang, Kai and Dan, Ruilong and Jiang, Steve and Zhang, You},
  journal = {Cureus},
  volume = {15},
  number = {6},
  pages = {e40895},
  year = {2023},
  doi = {10.7759/cureus.40895}
}"""


class ChatDoctorOptions(Options):
    variant: Variant | None = None
    """Which ChatDoctor dataset the files are; default: from each file's name."""
    icliniq_answer: Literal["icliniq", "chatgpt", "chatdoctor"] = "icliniq"
    """iCliniq: which answer becomes the output (default the real doctor's, ``answer_icliniq``)."""
    icliniq_instruction: str = INSTRUCTION
    """iCliniq records carry no instruction: this one (ChatDoctor's) is used."""


@register(
    "chatdoctor",
    options=ChatDoctorOptions,
    per_file=True,
    produces="records",
    summary="ChatDoctor GenMedGPT-5k, HealthCareMagic-100k, iCliniq-10k: patient question -> doctor's answer",
    license="Apache-2.0 (ChatDoctor repository); research use only, no commercial or clinical use",
    citation=CITATION,
)
def load(paths: Sequence[Path], options: ChatDoctorOptions) -> Iterator[Item]:
    for path in paths:
        yield from _load_file(path, options)


def variant_of(path: Path) -> Variant | None:
    """The ChatDoctor dataset a file name stands for, or None."""
    name = path.name.lower().replace("-", "").replace("_", "")
    for needle, variant in _NAMES:
        if needle in name:
            return variant
    return None


def _load_file(path: Path, options: ChatDoctorOptions) -> Iterator[Item]:
    variant = options.variant or variant_of(path)
    answer_key = f"answer_{options.icliniq_answer}"
    for at, obj in iter_json_records(path):
        if not isinstance(obj, dict):
            yield Drop("invalid_record", at, f"expected a JSON object, got {_type(obj)}", malformed=True)
            continue
        icliniq = "answer_icliniq" in obj
        if variant is None:
            if not icliniq:
                raise InputError(
                    at,
                    "cannot tell the ChatDoctor dataset from the file name (expected chatdoctor5k/GenMedGPT, "
                    "HealthCareMagic or iCliniq in it); set the option variant",
                )
            variant = "icliniq_10k"
        source = f"chatdoctor/{variant}"
        keys = ("input", answer_key) if icliniq else _ALPACA_KEYS
        missing = [k for k in keys if k not in obj]
        if missing:
            expected = _ICLINIQ_KEYS if icliniq else _ALPACA_KEYS
            yield Drop(
                "missing_field", at, f"missing key(s) {missing}; expected {list(expected)}", malformed=True
            )
            continue
        wrong = [f"{k}: expected a string, got {_type(obj[k])}" for k in keys if not isinstance(obj[k], str)]
        if wrong:
            yield Drop("invalid_record", at, "; ".join(wrong), malformed=True)
            continue
        question = obj["input"].strip()
        if not question:
            yield Drop("empty_input", at, "no patient message")
            continue
        answer = obj[answer_key if icliniq else "output"].strip()
        instruction = options.icliniq_instruction if icliniq else obj["instruction"].strip()
        yield make_record(
            at,
            instruction=instruction,
            input=question,
            output=answer,
            source=source,
            id=content_id(source, question, answer),
            meta={"file": path.name, "answer": answer_key if icliniq else "output"},
        )


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__
