"""How every subcommand reads its flags: one spelling rule and one boolean rule for all of them.

- A multi-word option takes ``-`` or ``_`` (``--output-dir`` or ``--output_dir``), as medAlpaca's
  flags do in `meadow train`; help shows the ``-`` spelling only.
- An on/off flag takes an optional explicit value, as `meadow train` does: ``--strict``,
  ``--strict True``, ``--strict=true``, ``--strict False`` (off). As a separate word only
  ``true``/``false`` (any case) are read as its value, so ``meadow generate --allow-download yes``
  still asks "yes".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperCommand

_BOOLEANS = {"true": True, "false": False}


def normalize_args(args: Sequence[str], params: Sequence[Any]) -> list[str]:
    """``args`` with ``--snake_case`` options spelled as declared and ``FLAG true/false`` settled.
    ``params``: the command's click parameters (typer's own copy of click: duck-typed here)."""
    options = {
        name: p for p in params if p.param_type_name == "option" for name in (*p.opts, *p.secondary_opts)
    }
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":  # the rest are arguments
            out.extend(args[i - 1 :])
            break
        if not arg.startswith("-"):
            out.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name.startswith("--") and name not in options and name.replace("_", "-") in options:
            name = name.replace("_", "-")
        option = options.get(name)
        if option is None or not option.is_flag or option.count or name in option.secondary_opts:
            out.append(name + eq + value)
            continue
        if not eq and i < len(args) and args[i].lower() in _BOOLEANS:
            value, eq = args[i], "="
            i += 1
        if not eq:
            out.append(name)
            continue
        if value.lower() not in _BOOLEANS:
            raise typer.BadParameter(f"takes no value, or True or False (got {value!r})", param_hint=name)
        if _BOOLEANS[value.lower()]:
            out.append(name)
        elif option.secondary_opts:
            out.append(option.secondary_opts[0])
        elif option.default:
            raise typer.BadParameter("is on by default and has no off switch", param_hint=name)
        # else: False is the flag's default, off: nothing to pass
    return out


class Command(TyperCommand):
    """A typer command that reads its arguments by the rules above."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        try:
            args = normalize_args(args, self.get_params(ctx))
        except typer.BadParameter as err:
            err.ctx = ctx  # so that the usage line is shown, as for click's own errors
            raise
        return super().parse_args(ctx, args)
