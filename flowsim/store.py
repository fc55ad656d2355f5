"""The run folder: chunked Parquet datasets and the manifest (DESIGN section 9).

Each table is a Parquet dataset folder (``projects.parquet/`` and so on) with
one file per chunk of replications, so ``pandas.read_parquet(".../projects.parquet")``
reads it whole.  A chunk's files are written under a temporary name and
renamed into place (atomic on POSIX), the metric table last; the manifest,
rewritten atomically after every chunk, lists the completed chunks.  A killed
run therefore never leaves a half-written file that is read back, and
``--resume`` recomputes exactly the chunks the manifest does not list.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import FlowsimError
from .tables import TABLES

MANIFEST = "manifest.json"
# Written from the chunks once a run ends: stale as soon as a new run starts in the folder.
DERIVED_FILES = ("summary.csv", "project_summary.csv", "report.html")


def chunk_name(first: int, last: int) -> str:
    return f"part-{first:07d}-{last:07d}"


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: set it back at once
    os.umask(mask)
    return mask


# Read once, at import: os.umask is process-wide, so reading it while threads write is a race.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a fresh temporary file beside it (a unique name,
    never following a link planted there; safe from several threads), then a rename.  The
    file gets the umask's permissions like the tables beside it: a temporary file is 0600,
    and other users and Dask workers could not read the manifest."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            os.fchmod(file.fileno(), _FILE_MODE)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_out_folder(out: Path) -> None:
    """Refuse an ``--out`` folder that cannot be made or written: a file, a path inside a
    file, a read-only parent (``FlowsimError``, so exit 2 before any simulation)."""
    if out.exists() and not out.is_dir():
        raise FlowsimError(f"--out must be a folder, got the file {str(out)!r}")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise FlowsimError(f"--out must be a folder, got {str(out)!r} inside the file {str(parent)!r}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FlowsimError(f"--out must be a folder flowsim can write, got {str(out)!r} ({str(parent)!r} is read-only)")


# What a failed write says when the folder, not flowsim, is at fault; pyarrow's write
# errors carry no file name, only these numbers.
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def write_failed(out: Path, error: OSError) -> Exception:
    """A failed write in the ``--out`` folder (disk full, permissions) as bad input
    (``FlowsimError``); any other operating-system error is not the folder's and is
    returned as it is, to keep its traceback."""
    where = Path(error.filename).resolve() if getattr(error, "filename", None) else None
    ours = where.is_relative_to(Path(out).resolve()) if where is not None else error.errno in _WRITE_ERRORS
    if not ours:
        return error
    reason = error.strerror or type(error).__name__
    return FlowsimError(f"--out must be a folder flowsim can write, got {str(out)!r} ({reason})")


class RunStore:
    """A run folder being written or read."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def check_folder(self) -> None:
        """Refuse, before anything is simulated, a run folder that cannot be written."""
        check_out_folder(self.root)

    def clear(self) -> None:
        """Empty a previous run's folder for a fresh run: only what flowsim writes goes
        (manifest, tables, summaries, report); anything else the user keeps there stays."""
        for name in (MANIFEST, *DERIVED_FILES):
            (self.root / name).unlink(missing_ok=True)
        for table in TABLES:
            shutil.rmtree(self.root / f"{table}.parquet", ignore_errors=True)

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            (self.root / f"{table}.parquet").mkdir(exist_ok=True)

    def write_chunk(self, name: str, tables: dict[str, pa.Table]) -> None:
        # The metric table goes last: its presence marks the chunk complete.
        for table in sorted(tables, key=lambda t: t == "replications"):
            final = self.root / f"{table}.parquet" / f"{name}.parquet"
            temporary = final.with_name(f".{final.name}.tmp")
            pq.write_table(tables[table], temporary, compression="zstd")
            os.replace(temporary, final)

    def remove_orphans(self, completed: set[str]) -> None:
        """Delete files of chunks the manifest does not list, and temporary files.

        They are left by a killed run (a chunk written but not yet listed, a
        half-written file), or simulated past the stopping point of a
        ``--target-ci`` run; ``pandas.read_parquet`` of a table folder must not
        see them.
        """
        for table in TABLES:
            folder = self.root / f"{table}.parquet"
            for path in folder.glob("*"):
                chunk = path.name.removeprefix(".").split(".")[0]
                if chunk not in completed or path.name.startswith("."):
                    path.unlink(missing_ok=True)
        for path in self.root.glob(f".{MANIFEST}.*"):
            path.unlink(missing_ok=True)

    def read_manifest(self) -> dict | None:
        """The manifest of the run this folder holds, None when it holds none; a file that is
        not a manifest written by flowsim run is an error (one line)."""
        manifest, rule, found = self._manifest()
        if found is not None:
            raise FlowsimError(f"{self.root / MANIFEST}: must be {rule}, got {found}")
        return manifest

    def existing_manifest(self) -> dict | None:
        """The manifest of the run a fresh run would replace, None when the folder holds none.
        A ``manifest.json`` that flowsim did not write is refused rather than overwritten: the
        folder is someone else's."""
        manifest, _, found = self._manifest()
        if found is not None:
            raise FlowsimError(
                f"--out {self.root}: must be a new folder or one holding a flowsim run, got a {MANIFEST} "
                f"flowsim did not write ({found}); choose another folder, or remove {self.root / MANIFEST}"
            )
        return manifest

    def _manifest(self) -> tuple[dict | None, str, str | None]:
        """(the manifest or None, what the file must be, what it is when it is not a flowsim run's)."""
        path = self.root / MANIFEST
        rule = "a manifest written by flowsim run"
        if not path.exists():
            return None, rule, None
        try:
            manifest = json.loads(path.read_text())
        except (ValueError, OSError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return None, "the JSON written by flowsim run", f"unreadable JSON ({error})"
        if not isinstance(manifest, dict):
            return None, rule, type(manifest).__name__
        missing = [key for key in ("scenario", "policies", "completed_chunks") if key not in manifest]
        if missing:
            return None, rule, f"no {', '.join(missing)}"
        return manifest, rule, None

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_text(self.root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=False, default=str))

    def read_table(
        self,
        table: str,
        chunks: list[str] | None = None,
        columns: list[str] | None = None,
        rows: pc.Expression | None = None,
        dictionary: list[str] | None = None,
    ) -> pa.Table:
        """The completed ``chunks`` of ``table`` (all by default), optionally only some
        ``columns`` and the ``rows`` matching an Arrow expression: read chunk by chunk,
        so a pruned read of a large run never holds the whole table.  ``dictionary``
        columns are read dictionary-encoded (categoricals in pandas: repeated text
        held once)."""
        folder = self.root / f"{table}.parquet"
        names = sorted(p.stem for p in folder.glob("part-*.parquet"))
        if chunks is not None:
            wanted = set(chunks)
            # A chunk the manifest lists as completed but whose file is gone (a folder copied
            # in part, Dask workers writing where this machine does not see) must not be
            # skipped: the tables would be partial while the manifest says whole.
            missing = sorted(wanted.difference(names))
            if missing:
                more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
                raise FlowsimError(
                    f"{folder}: must hold every chunk {MANIFEST} lists as completed, got no "
                    f"{missing[0]}.parquet{more} (every Dask worker must write to a folder this "
                    "machine sees at the same path)"
                )
            names = [n for n in names if n in wanted]
        if not names:
            return pa.table({})
        parts = []
        for name in names:
            path = folder / f"{name}.parquet"
            try:
                parts.append(pq.read_table(path, columns=columns, filters=rows, read_dictionary=dictionary))
            except (pa.ArrowException, OSError) as error:  # damaged, cut short, or another program's file
                raise FlowsimError(
                    f"{path}: must be a table written by flowsim run, got a file it cannot read ({_first_line(error)})"
                ) from None
        try:
            return pa.concat_tables(parts)
        except pa.ArrowException as error:  # chunks of two different tables
            raise FlowsimError(f"{folder}: must hold chunks of one table, got {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    """The first line of an Arrow error, without the file name it repeats."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return re.sub(r"^Could not open Parquet input source '.*?': ", "", line)
