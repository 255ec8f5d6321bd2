"""``meadow generate``: answer instructions with a model (a base model plus a LoRA adapter, a
directory, a Hub id or the embedded SmolLM2), in the prompt format it was trained with.

- ``medalpaca`` template (what ``meadow train`` trains on): each turn is one prompt
  ``primer / ### Instruction: / ### Input: / ### Response:``, single-turn as medAlpaca's inferer;
  the answer is the text after the response marker, up to the next section marker.
- ``chat``: the model's chat template, keeping the conversation's history.

Decoding is greedy (deterministic) unless a temperature is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meadow.eval.generate import cut
from meadow.eval.prompts import Style
from meadow.eval.run import LoadedModel
from meadow.train.prompt import PromptTemplate, load_template


@dataclass
class ChatSession:
    lm: LoadedModel
    style: Style = "medalpaca"
    template: PromptTemplate | None = None
    max_new_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    history: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.style == "medalpaca" and self.template is None:
            self.template = load_template("medalpaca")

    def prompt(self, instruction: str, input: str = "") -> str:
        if self.style == "medalpaca":
            assert self.template is not None
            return self.template.render(instruction, input)
        content = f"{instruction}\n\n{input}" if input else instruction
        messages = [*self.history, {"role": "user", "content": content}]
        return self.lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def respond(self, instruction: str, input: str = "") -> str:
        import torch

        prompt = self.prompt(instruction, input)
        tok = self.lm.tokenizer
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
        device = next(self.lm.model.parameters()).device
        kwargs: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if self.temperature > 0:
            torch.manual_seed(self.seed)
            kwargs = {"do_sample": True, "temperature": self.temperature}
        with torch.inference_mode():
            out = self.lm.model.generate(
                **{k: v.to(device) for k, v in enc.items()},
                max_new_tokens=self.max_new_tokens,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                **kwargs,
            )
        answer = cut(tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True))
        if self.style == "chat":
            content = f"{instruction}\n\n{input}" if input else instruction
            self.history += [{"role": "user", "content": content}, {"role": "assistant", "content": answer}]
        return answer
