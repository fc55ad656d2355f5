"""Users' own rules from outside a Python session: installed entry points and ``--rules``.

A rule is known in a process once its module has called ``flowsim.register``.
A notebook imports its module itself; the command line and worker processes
need to be told where the modules are:

* an installed package declares an entry point of the group ``flowsim.rules``
  naming a module; every process imports them at its first rule look-up;
* ``flowsim --rules FILE.py|MODULE`` imports a file or module first, and a Dask
  run imports it again on its workers (``imported_rules``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import threading
from pathlib import Path

from ..errors import FlowsimError

# e.g. in a package's pyproject.toml:
#   [project.entry-points."flowsim.rules"]
#   mycompany = "mycompany.flowsim_rules"
ENTRY_POINT_GROUP = "flowsim.rules"

# Re-entrant: a plugin's own import may look a rule up.  The flag is set only once every
# plugin loaded, so a failure is reported again at the next look-up, and a second thread
# (a Dask worker's) waits for the first to finish instead of seeing half the rules.
_lock = threading.RLock()
_loaded = False
_loading = False


def load_entry_points() -> None:
    """Import every installed ``flowsim.rules`` entry point, once per process.

    Called at the first rule look-up rather than at import, so that a process
    that only reads results pays nothing, and so that every process that
    builds rules (the command line, a notebook, a pool or Dask worker) sees them."""
    global _loaded, _loading
    if _loaded:
        return
    with _lock:
        if _loaded or _loading:  # done meanwhile, or this thread's own plugin import looking up
            return
        from importlib.metadata import entry_points

        _loading = True
        try:
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    entry.load()
                except (ImportError, AttributeError) as error:
                    raise FlowsimError(
                        f"the {ENTRY_POINT_GROUP} entry point {entry.name!r} must name an importable module, "
                        f"got {entry.value!r} ({error}; fix or uninstall the package that declares it)"
                    ) from None
            _loaded = True
        finally:
            _loading = False


_IMPORTED: list[tuple[str, str]] = []  # (spec, folder) of every import_rules, for Dask workers


def imported_rules() -> tuple[tuple[str, str], ...]:
    """What ``import_rules`` imported in this process, as ``(spec, folder)`` pairs that
    ``import_rules(spec, folder)`` repeats in another process (a Dask worker)."""
    return tuple(_IMPORTED)


def import_rules(spec: str, folder: str | None = None) -> None:
    """Import the module of a user's own rules, which registers them: a ``.py`` file (its
    folder importable, as for a script), or a module name importable from ``folder``
    (default: the current one; ``flowsim --rules``).  Importing the same spec again does
    nothing.

    Not finding the module, or its syntax, is bad input (``FlowsimError``); any other
    error raised while it runs, an ``ImportError`` of its own included, keeps its
    traceback: it is the rule author's bug to see."""
    folder = folder or os.getcwd()
    path = Path(folder, spec)
    key = (str(path.resolve()), folder) if path.suffix == ".py" else (spec, folder)
    if key in _IMPORTED:
        return
    try:
        if path.suffix == ".py":
            _import_file(spec, path.resolve())
        else:
            _import_module(spec, folder)
    except SyntaxError as error:
        _bad(spec, f"SyntaxError at line {error.lineno}: {error.msg}")
    _IMPORTED.append(key)


def _import_file(spec: str, path: Path) -> None:
    if not path.is_file():
        _bad(spec, "no such file")
    # A name of its own per file (two rules.py in two folders must not replace each other),
    # registered in sys.modules so that pool workers and pickling find it by name.
    name = f"flowsim_rules_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # its sibling modules import, as for a script
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # no half-run module left behind
        raise


def _import_module(spec: str, folder: str) -> None:
    if not spec or spec.startswith(".") or not all(part.isidentifier() for part in spec.split(".")):
        _bad(spec, "not a module name: a dotted name like myrules or mypackage.rules")
    if folder not in sys.path:
        sys.path.insert(0, folder)  # as ``python -m`` would: the user's folder
    try:
        importlib.import_module(spec)
    except ModuleNotFoundError as error:
        # Only the module named (or a package on its path) missing is bad input; a module that
        # its own code fails to import is the rule author's traceback.
        if error.name is None or not (spec == error.name or spec.startswith(error.name + ".")):
            raise
        _bad(spec, str(error))


def _bad(spec: str, problem: str):
    raise FlowsimError(f"--rules must be a .py file or an importable module of rules, got {spec!r} ({problem})")


__all__ = ["ENTRY_POINT_GROUP", "import_rules", "imported_rules", "load_entry_points"]
