"""Rows to ClickHouse Native-format blocks, made where the rows are made.

A decoder process turns a request into rows and, here, into one Native block of the table's
columns: the bytes an ``INSERT ... FORMAT Native`` reads. The service process then moves only
bytes (no per-row Python objects cross the process boundary) and the drain inserts many blocks
in one statement, since a Native stream is a sequence of blocks. The column types are the
table's own (read from ``system.columns``), so the block is exactly what ClickHouse expects.

Serialization is clickhouse-connect's, per column type, the same code its ``insert`` runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext

__all__ = ["Block", "NativeEncoder"]


@dataclass(frozen=True, slots=True)
class Block:
    """Rows encoded for one table.

    Attributes:
        rows: How many rows ``data`` holds.
        data: One Native-format block (no ``INSERT`` statement); blocks concatenate.
        first: The first row as decoded, for the replay check of an already stored record.
    """

    rows: int
    data: bytes
    first: tuple[Any, ...]


def _leb128(value: int, out: bytearray) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


class NativeEncoder:
    """Encodes rows of one table as a Native block.

    Args:
        table: The table (for error messages).
        columns: Column names, the order of every row.
        types: Their ClickHouse types, as ``system.columns`` spells them.

    Picklable (it holds only names and type strings), so a decoder process can be given one.
    Thread-safe: ``encode`` keeps no state between calls.
    """

    def __init__(self, table: str, columns: Sequence[str], types: Sequence[str]) -> None:
        if len(columns) != len(types):
            raise ValueError(f"{table}: {len(columns)} columns but {len(types)} types")
        self.table = table
        self.columns = tuple(columns)
        self.types = tuple(types)
        self._init()

    def _init(self) -> None:
        self._types = [get_from_name(name) for name in self.types]
        header = []
        for name, ch_type in zip(self.columns, self._types, strict=True):
            out = bytearray()
            for text in (name, ch_type.insert_name):
                raw = text.encode()
                _leb128(len(raw), out)
                out += raw
            header.append(bytes(out))
        self._headers = header

    def __getstate__(self) -> dict[str, Any]:
        return {"table": self.table, "columns": self.columns, "types": self.types}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.table = state["table"]
        self.columns = state["columns"]
        self.types = state["types"]
        self._init()

    def encode(self, rows: Sequence[Sequence[Any]]) -> Block:
        """One block of ``rows`` (each in ``columns`` order).

        Raises:
            ValueError: A value does not fit its column's type; the message names the column.
        """
        if not rows:
            return Block(0, b"", ())
        columns = list(zip(*rows, strict=True))
        context = InsertContext(
            self.table, self.columns, self._types, columns, column_oriented=True
        )
        out = bytearray()
        _leb128(len(self.columns), out)
        _leb128(len(rows), out)
        for name, header, ch_type, data in zip(
            self.columns, self._headers, self._types, columns, strict=True
        ):
            out += header
            context.start_column(name)
            try:
                ch_type.write_column(data, out, context)
            except Exception as exc:
                raise ValueError(
                    f"{self.table}.{name}: value does not fit {ch_type.name}: {exc}"
                ) from exc
        return Block(len(rows), bytes(out), tuple(rows[0]))
