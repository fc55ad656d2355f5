"""The ``--help`` format of every ``flowsim`` command (its own module: ``flowsim.cli`` and
``flowsim.cli_analysis`` both use it, and the first imports the second)."""

from __future__ import annotations

from typer.core import TyperCommand, TyperGroup

from .cli_errors import RULES_WITHOUT_A_FILE, OneLineGroupErrors, OneLineUsageErrors, fail

__all__ = ["FlowsimCommand", "FlowsimGroup"]


class _HelpFormat:
    """``--help`` as the docs write commands: ``flowsim run [OPTIONS] SCENARIO``, ``--quiet``.

    Recent typer shows every flag as taking a value (``--quiet -q <bool>``, ``--help
    <bool>``) and a required argument in braces by its Python name (``{scenario}``).
    Here a flag shows no value, and an argument its upper-case name (or its ``metavar``).
    """

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if param.metavar is not None:
                continue
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                param.metavar = ""  # what the help prints after the option: nothing
            elif param.param_type_name == "argument" and param.name:
                param.metavar = param.name.upper()
        return params

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


class FlowsimCommand(OneLineUsageErrors, _HelpFormat, TyperCommand):
    """A ``flowsim`` command (``@app.command(cls=FlowsimCommand)``): its help as above, a
    usage error in one line (``flowsim.cli_errors``)."""


class FlowsimGroup(OneLineGroupErrors, _HelpFormat, TyperGroup):
    """A ``flowsim`` command group (``typer.Typer(cls=FlowsimGroup)``)."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        # ``--rules`` belongs to flowsim, not to a command, yet users write it after the
        # command too (``flowsim run s.yaml --rules r.py``): it is taken from anywhere.
        args = rules_first(args)
        if not ctx.resilient_parsing and rules_without_a_file(args):
            # Said here, wherever it is: before a command, click would take the option after
            # --rules as its file (``flowsim --rules --help``: "Missing command").
            fail(RULES_WITHOUT_A_FILE)
        return super().parse_args(ctx, args)


def rules_without_a_file(args: list[str]) -> bool:
    """Whether a ``--rules`` (before any ``--``) is last or followed by an option."""
    for i, arg in enumerate(args):
        if arg == "--":
            return False
        if arg == "--rules" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            return True
    return False


def rules_first(args: list[str]) -> list[str]:
    """``args`` with every ``--rules VALUE`` (or ``--rules=VALUE``) moved to the front, in
    order; arguments after ``--`` are left alone, and so is a last ``--rules`` (with no
    value: ``FlowsimGroup.parse_args`` then says --rules needs a file)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg.startswith("--rules="):
            front.append(arg)
        elif arg == "--rules" and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest
