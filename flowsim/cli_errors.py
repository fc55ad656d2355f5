"""A usage error found while parsing the command line, in one line (DESIGN section 10).

click (vendored by typer) reports a bad value, an unknown option or command, a missing
argument, in a box under the usage, without the value it refused.  ``flowsim`` says it
as its own checks do, in one line on stderr, and exits with code 2::

    replications (-n/--replications) must be a whole number, got 'abc'
    flowsim run has no option --polcy (did you mean --policy?); see flowsim run --help

``OneLineUsageErrors`` (a command) and ``OneLineGroupErrors`` (a group) do it, mixed into
every ``flowsim`` command class by ``flowsim.cli_help``, so ``CliRunner().invoke(app, ...)``
and the console script print the same.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

# typer vendors click as the private ``typer._click`` and exports only BadParameter: the
# other errors its parser raises are reachable only there.  tests/test_cli_usage_errors.py
# (test_the_typer_internals_used_are_still_there) fails if they move.
from typer._click.exceptions import BadOptionUsage, MissingParameter, NoArgsIsHelpError, NoSuchOption, UsageError

__all__ = ["EXIT_BAD_INPUT", "RULES_WITHOUT_A_FILE", "OneLineGroupErrors", "OneLineUsageErrors", "python_type"]

EXIT_BAD_INPUT = 2

RULES_WITHOUT_A_FILE = (
    "--rules needs a file of rules after it (a .py file or an importable module: --rules FILE), got nothing"
)

# What a value of each Python type must be, in words.
_KINDS: dict[object, str] = {int: "a whole number", float: "a number", Path: "a path"}


class OneLineUsageErrors:
    """Mixed into a click command or group: its usage errors, in one line and exit code 2."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        with one_line_usage_errors(ctx, list(args)):  # a copy: click's parser empties ``args``
            return super().parse_args(ctx, args)


class OneLineGroupErrors(OneLineUsageErrors):
    """The same for a group, plus an unknown command and a missing one."""

    def resolve_command(self, ctx, args: list[str]):
        name = args[0]
        if not ctx.resilient_parsing and not name.startswith("-") and self.get_command(ctx, name) is None:
            fail(unknown_command(ctx, name, self.list_commands(ctx)))
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        # "Missing command." (``flowsim --rules r.py``) is raised here, not while parsing;
        # a subcommand's own usage errors are already a line and an exit by now.
        with one_line_usage_errors(ctx, []):
            return super().invoke(ctx)


@contextmanager
def one_line_usage_errors(ctx, args: list[str]) -> Iterator[None]:
    """Print a usage error of ``ctx``'s command (parsing ``args``) as one line; exit 2."""
    try:
        yield
    except NoArgsIsHelpError:  # ``flowsim`` alone: the help, as before
        raise
    except UsageError as error:
        fail(usage_line(error, ctx, args))


def fail(line: str):
    typer.echo(line, err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def usage_line(error: UsageError, ctx, args: list[str]) -> str:
    """The one line saying what ``error`` found wrong in ``args`` of ``ctx``'s command."""
    where = ctx.command_path
    see = f"see {where} --help"
    if isinstance(error, NoSuchOption):
        hint = f" (did you mean {_either(error.possibilities)}?)" if error.possibilities else ""
        return f"{where} has no option {error.option_name}{hint}; {see}"
    if isinstance(error, BadOptionUsage):
        param = _option(ctx, error.option_name)
        if param is not None and getattr(param, "is_flag", False):
            return f"{_name(param)} takes no value (it is a flag){_got(_given(param, args))}"
        if param is not None:
            return f"{_name(param)} must be followed by {_kind(param) or 'a value'}, got nothing after it"
    elif isinstance(error, MissingParameter) and error.param is not None:
        return f"missing {_shown(error.param)}: {where} needs {_described(error.param)}; {see}"
    elif isinstance(error, typer.BadParameter) and error.param is not None:
        param = error.param
        rule = f"must be {_kind(param)}" if _kind(param) else f"is not valid ({error.message.rstrip('.')})"
        return f"{_name(param)} {rule}{_got(_given(param, args))}"
    # Anything else click finds (an extra argument, no command): its words, on one line.
    return f"{' '.join(error.format_message().split()).rstrip('.')}; {see}"


def unknown_command(ctx, name: str, commands: list[str]) -> str:
    close = difflib.get_close_matches(name, commands)
    hint = f"did you mean {_either(map(repr, close))}?" if close else f"its commands: {', '.join(commands)}"
    return f"{ctx.command_path} has no command {name!r} ({hint}); see {ctx.command_path} --help"


def _either(names) -> str:
    """``--a``, ``--a or --b``, ``--a, --b or --c`` (closest first, as difflib gives them)."""
    *first, last = names
    return f"{', '.join(first)} or {last}" if first else last


def python_type(param) -> object:
    """The Python type annotated on ``param`` (``int`` for ``replications: int``), or None.

    typer (0.29) converts values with pydantic and no longer gives a click ``ParamType``;
    no public API tells a parameter's type, so this reads typer's own ``type_descriptor``.
    tests/test_cli_usage_errors.py fails if it goes.
    """
    return getattr(getattr(param, "type_descriptor", None), "annotation", None)


def _kind(param) -> str | None:
    return _KINDS.get(python_type(param))


def _option(ctx, option_name: str):
    return next((p for p in ctx.command.params if option_name in (*p.opts, *p.secondary_opts)), None)


def _shown(param) -> str:
    """``-n/--replications`` of an option, ``SCENARIO`` of an argument."""
    if param.param_type_name == "argument":
        return param.metavar or param.name.upper()
    return "/".join(sorted([*param.opts, *param.secondary_opts], key=len))


def _name(param) -> str:
    """``replications (-n/--replications)``, as flowsim's own checks name an option."""
    return f"{param.name.rstrip('_')} ({_shown(param)})"


def _described(param) -> str:
    """``param``'s help as a phrase: ``the scenario file (YAML)``."""
    text = (getattr(param, "help", None) or "").strip().rstrip(".")
    if not text:
        return "it"
    first = text.split()[0]
    return text[0].lower() + text[1:] if len(first) == 1 or first[1:].islower() else text


def _got(given: str | None) -> str:
    return f", got {given!r}" if given is not None else ""


def _given(param, args: list[str]) -> str | None:
    """The value ``args`` give option ``param`` (``--opt value``, ``--opt=value``, ``-nvalue``;
    the last one, the one click keeps), or None: not one of several flags run together (``-qnabc``)."""
    if param.param_type_name == "argument":
        return None
    found = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        for opt in (*param.opts, *param.secondary_opts):
            if arg == opt and i + 1 < len(args):
                found = args[i + 1]
            elif opt.startswith("--") and arg.startswith(opt + "="):
                found = arg[len(opt) + 1 :]
            elif not opt.startswith("--") and arg.startswith(opt) and len(arg) > len(opt):
                found = arg[len(opt) :]
    return found
