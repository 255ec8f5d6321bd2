"""medAlpaca's prompt template: primer, ``### Instruction:``, ``### Input:``, ``### Response:``.

The template ships as package data (``templates/medalpaca.json``, the same keys as
medAlpaca's ``prompt_templates/medalpaca.json``); any JSON file with those keys works too.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from meadow.errors import MeadowError


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    primer: str
    instruction: str
    input: str
    output: str
    response_split: str

    def render(self, instruction: str = "", input: str = "", output: str = "") -> str:
        """The prompt exactly as medAlpaca's ``DataHandler.generate_prompt`` builds it.

        Leave ``output`` empty to get the prompt a model completes at inference time.
        """
        if not (instruction or input or output):
            raise ValueError("at least one of instruction, input, output must be given")
        return f"{self.primer}{self.instruction}{instruction}{self.input}{input}{self.output}{output}"

    def response(self, generated: str) -> str:
        """The model's answer: the text after the last response marker."""
        return generated.rsplit(self.response_split, 1)[-1].strip()


def load_template(name_or_path: str = "medalpaca") -> PromptTemplate:
    """A bundled template by name (``medalpaca``) or a JSON file by path."""
    path = Path(name_or_path)
    try:
        if path.suffix == ".json" or path.exists():
            text = path.read_text(encoding="utf-8")
            origin = str(path)
        else:
            res = resources.files("meadow.train") / "templates" / f"{name_or_path}.json"
            text = res.read_text(encoding="utf-8")
            origin = f"bundled template {name_or_path!r}"
    except FileNotFoundError:
        raise MeadowError(f"{name_or_path}: prompt template not found (bundled: medalpaca)") from None
    try:
        return PromptTemplate.model_validate(json.loads(text))
    except json.JSONDecodeError as err:
        raise MeadowError(f"{origin}:{err.lineno}: invalid JSON: {err.msg}") from None
    except ValidationError as err:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise MeadowError(f"{origin}: invalid prompt template: {fields}") from None
