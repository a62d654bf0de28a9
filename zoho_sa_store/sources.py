"""Readers of the token stores that users move in from, and of zoho-sa-store's own JSON export.

Each reader turns a source into ``SourceRow`` objects without touching the
token table: the SDK's ``FileStore`` CSV (``read_filestore``), a ``DBStore``
table or the SQLite file of Zoho's custom-store sample (``read_db_table``) and
the JSON of ``zoho-sa-store export`` (``read_json``). Values are not checked
here: ``zoho_sa_store.importers`` checks each row as it imports it, so a bad
row is reported with its location instead of failing the whole source.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .display import DATA_COLUMNS, count_of
from .engine import describe_url

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ImportSourceError",
    "SourceRow",
    "TokenSource",
    "read_db_table",
    "read_filestore",
    "read_json",
]

EXPORT_FORMAT = "zoho-sa-store-export"
"""Value of the ``format`` key at the top of an export file."""

EXPORT_VERSION = 1

_COLUMN_ALIASES = {
    **{column: column for column in DATA_COLUMNS},
    # FileStore of SDK 2.x names the user column user_mail, and every FileStore
    # header spells the redirect column redirect_uri.
    "user_mail": "user_name",
    "redirect_uri": "redirect_url",
}

_FILESTORE_LAYOUTS = {
    10: ("id", "user_name", "client_id", "client_secret", "refresh_token", "access_token", "grant_token",
         "expiry_time", "redirect_uri", "api_domain"),
    9: ("id", "user_mail", "client_id", "client_secret", "refresh_token", "access_token", "grant_token",
        "expiry_time", "redirect_uri"),
}  # fmt: skip
"""FileStore headers by column count: SDK generations 5.0 to 8.0 write 10 columns, 2.x wrote 9."""

_DERIVED_KEYS = frozenset({"access_token_digest", "refresh_token_digest", "grant_token_digest"})
_TIMESTAMP_KEYS = ("created_at", "updated_at")
_KNOWN_JSON_KEYS = frozenset({*_COLUMN_ALIASES, *_DERIVED_KEYS, *_TIMESTAMP_KEYS})


class ImportSourceError(Exception):
    """A source that cannot be read at all: a missing file, an unknown layout, a missing table."""


@dataclasses.dataclass(frozen=True)
class SourceRow:
    """One token as read from a source, not yet checked.

    ``location`` names the row in messages (``line 4``, ``id '7'``, ``item 2``).
    ``problem`` is set when the reader already found the row unusable, for
    example a CSV line with the wrong number of fields.
    """

    location: str
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    problem: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclasses.dataclass
class TokenSource:
    """The rows of one source, with a description for the summary line and any notes about how it was read."""

    description: str
    rows: list[SourceRow]
    notes: list[str] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def _open_text(path: str, encoding: str) -> Iterator[TextIO]:
    """Open a text file, or standard input for ``-``, with universal newlines left to the csv module."""
    if path == "-":
        yield io.TextIOWrapper(sys.stdin.buffer, encoding=encoding, newline="")
        return
    try:
        handle = open(path, encoding=encoding, newline="")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise ImportSourceError(f"File {path!r} does not exist: check the path.") from None
    except IsADirectoryError:
        raise ImportSourceError(f"{path!r} is a directory, not a file: pass the path of the file.") from None
    except PermissionError:
        raise ImportSourceError(f"File {path!r} is not readable: check its permissions.") from None
    with handle:
        yield handle


def _decode_error(path: str, error: UnicodeDecodeError) -> ImportSourceError:
    return ImportSourceError(
        f"File {path!r} is not valid {error.encoding} text (byte 0x{error.object[error.start]:02x} at offset "
        f"{error.start}): pass its encoding with --encoding, for example --encoding latin-1."
    )


def _filestore_columns(first_row: Sequence[str]) -> tuple[tuple[str, ...], bool] | None:
    """Return the column names of a FileStore file and whether its first row is a header.

    A header may list the known columns in any order. A file without a
    header (the SDK's FileStore loses it when threads write at once) is read
    in the layout that its field count gives.
    """
    names = tuple(field.strip().lower() for field in first_row)
    if "id" in names and all(name in _COLUMN_ALIASES for name in names) and len(set(names)) == len(names):
        return tuple(_COLUMN_ALIASES[name] for name in names), True
    layout = _FILESTORE_LAYOUTS.get(len(first_row))
    if layout is not None and not any(name in _COLUMN_ALIASES for name in names):
        return tuple(_COLUMN_ALIASES[name] for name in layout), False
    return None


def read_filestore(path: str, *, encoding: str = "utf-8-sig") -> TokenSource:
    """Read a CSV file written by the SDK's ``FileStore``.

    Both layouts are accepted: 10 columns (``id,user_name,...,redirect_uri,api_domain``,
    SDK generations 5.0 to 8.0) and 9 columns (``user_mail`` in place of
    ``user_name``, no ``api_domain``, SDK 2.x). Empty values become None. A row
    with another number of fields than the header is kept as a problem row.

    Raises:
        ImportSourceError: The file is missing, not text in ``encoding``, not CSV,
            or does not start with a FileStore header or row.
    """
    name = "standard input" if path == "-" else Path(path).name
    rows: list[SourceRow] = []
    notes: list[str] = []
    columns: tuple[str, ...] | None = None
    try:
        with _open_text(path, encoding) as handle:
            reader = csv.reader(handle)
            while True:
                start_line = reader.line_num + 1
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as error:
                    raise ImportSourceError(
                        f"File {path!r} is not valid CSV at line {start_line} ({error}): "
                        "check that it is the token file of the SDK's FileStore."
                    ) from None
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if columns is None:
                    layout = _filestore_columns(fields)
                    if layout is None:
                        raise ImportSourceError(
                            f"File {path!r} does not start with a FileStore header: expected "
                            f"{','.join(_FILESTORE_LAYOUTS[10])} (10 columns) or {','.join(_FILESTORE_LAYOUTS[9])} "
                            "(9 columns). Check that it is the token file of the SDK's FileStore."
                        )
                    columns, has_header = layout
                    if has_header:
                        continue
                    notes.append(
                        f"{name} has no header line; its rows are read as the {len(columns)}-column FileStore layout."
                    )
                rows.append(_filestore_row(start_line, fields, columns))
    except UnicodeDecodeError as error:
        raise _decode_error(path, error) from None

    if columns is None:
        raise ImportSourceError(f"File {path!r} is empty: expected the CSV file of the SDK's FileStore.")
    return TokenSource(f"{name} (FileStore CSV, {len(columns)} columns)", rows, notes)


def _filestore_row(line: int, fields: Sequence[str], columns: Sequence[str]) -> SourceRow:
    location = f"line {line}"
    if len(fields) != len(columns):
        return SourceRow(
            location,
            problem=(
                f"the row has {count_of(len(fields), 'field')}, expected {len(columns)} like the header: "
                "look for a missing field or an unquoted comma"
            ),
        )
    # FileStore writes None as an empty field; the record check turns blanks into None.
    return SourceRow(location, dict(zip(columns, fields, strict=True)))


def read_db_table(engine: Engine, table_name: str, schema: str | None = None) -> TokenSource:
    """Read every row of a token table of the SDK's ``DBStore`` or of a similar custom store.

    The documented layout has the ten columns ``id``, ``user_name``, ...,
    ``api_domain`` with ``varchar(10)`` ids and a ``varchar(20)`` expiry.
    ``user_mail`` and ``redirect_uri`` are accepted in place of ``user_name``
    and ``redirect_url``; a missing ``api_domain`` reads as None; other columns
    are ignored. Integer ids become strings, as the SDK's ids are strings.

    Raises:
        ImportSourceError: The table is missing or has no ``id`` column.
        sqlalchemy.exc.SQLAlchemyError: The source database failed.
    """
    where = describe_url(engine.url)
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        if not inspector.has_table(table_name, schema=schema):
            tables = ", ".join(sorted(inspector.get_table_names(schema=schema))) or "none"
            raise ImportSourceError(
                f"Table {table_name!r} does not exist in {where} (tables there: {tables}): "
                "pass the token table of the SDK's DBStore with --source-table."
            )
        source_columns: dict[str, str] = {}
        for column in inspector.get_columns(table_name, schema=schema):
            target = _COLUMN_ALIASES.get(str(column["name"]).lower())
            if target is not None and target not in source_columns:
                source_columns[target] = str(column["name"])
        if "id" not in source_columns:
            raise ImportSourceError(
                f"Table {table_name!r} in {where} has no id column, so it is not a token table of the SDK's "
                "DBStore: pass the right table with --source-table."
            )

        table = sa.table(table_name, *(sa.column(name) for name in source_columns.values()), schema=schema)
        selected = [table.c[name].label(target) for target, name in source_columns.items()]
        result = connection.execute(sa.select(*selected)).mappings().all()

    rows = []
    for index, record in enumerate(sorted(result, key=_id_order), start=1):
        values = dict(record)
        if isinstance(values["id"], int):
            values["id"] = str(values["id"])
        location = f"id {values['id']!r}" if values["id"] is not None else f"row {index} (no id)"
        rows.append(SourceRow(location, values))
    name = f"{schema}.{table_name}" if schema else table_name
    return TokenSource(f"table {name!r} in {where}", rows)


def _id_order(row: Mapping[Any, Any]) -> tuple[int, int, str]:
    # DBStore ids are numbers stored as text: "2" comes before "10".
    token_id = row["id"]
    text = "" if token_id is None else str(token_id)
    if text.isascii() and text.isdigit():
        return (0, int(text), text)
    return (1, 0, text)


def read_json(path: str) -> TokenSource:
    """Read the tokens of a ``zoho-sa-store export`` file, or of a JSON array of such token objects.

    The keys of a token are the column names; ``created_at`` and ``updated_at``
    are ISO 8601 UTC times. The derived ``*_digest`` keys are ignored, and any
    other unknown key makes the row a problem row, so a misspelled column
    never loses a value silently.

    Raises:
        ImportSourceError: The file is missing, not JSON, or not an export.
    """
    name = "standard input" if path == "-" else Path(path).name
    try:
        with _open_text(path, "utf-8-sig") as handle:
            document = json.load(handle)
    except UnicodeDecodeError as error:
        raise _decode_error(path, error) from None
    except json.JSONDecodeError as error:
        raise ImportSourceError(
            f"File {path!r} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}): "
            "pass a file written by zoho-sa-store export."
        ) from None

    if isinstance(document, dict):
        if document.get("format") != EXPORT_FORMAT or not isinstance(document.get("tokens"), list):
            raise ImportSourceError(
                f"File {path!r} is not a zoho-sa-store export: expected an object with "
                f'"format": "{EXPORT_FORMAT}" and a "tokens" array, or a JSON array of tokens.'
            )
        version = document.get("version")
        if version != EXPORT_VERSION:
            raise ImportSourceError(
                f"File {path!r} is an export of version {version!r}, but this zoho-sa-store reads version "
                f"{EXPORT_VERSION}: import it with the zoho-sa-store release that wrote it, or a newer one."
            )
        items = document["tokens"]
    elif isinstance(document, list):
        items = document
    else:
        raise ImportSourceError(
            f"File {path!r} contains a JSON {_json_type(document)}, not an export: pass a file written by "
            "zoho-sa-store export."
        )
    return TokenSource(f"{name} (JSON export)", [_json_row(index, item) for index, item in enumerate(items, 1)])


def _json_row(index: int, item: Any) -> SourceRow:
    location = f"item {index}"
    if not isinstance(item, dict):
        return SourceRow(location, problem=f"the item is a JSON {_json_type(item)}, not an object of column values")
    if isinstance(item.get("id"), str):
        location = f"item {index} (id {item['id']!r})"

    unknown = sorted(key for key in item if key not in _KNOWN_JSON_KEYS)
    if unknown:
        return SourceRow(
            location, problem=f"the item has unknown keys {unknown}: use the column names {', '.join(DATA_COLUMNS)}"
        )

    timestamps: dict[str, datetime | None] = {}
    for key in _TIMESTAMP_KEYS:
        try:
            timestamps[key] = _parse_timestamp(item.get(key))
        except ValueError:
            return SourceRow(
                location, problem=f"{key} {item[key]!r} is not an ISO 8601 time such as 2026-12-04T10:00:00Z"
            )

    values = {_COLUMN_ALIASES[key]: value for key, value in item.items() if key in _COLUMN_ALIASES}
    return SourceRow(location, values, created_at=timestamps["created_at"], updated_at=timestamps["updated_at"])


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _parse_timestamp(value: Any) -> datetime | None:
    """Parse an ISO 8601 time into naive UTC, as the table stores it; a time without a zone is UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment
