"""Per-source state store: rows of batched state arrays, LRU-bounded, checkpointable.

Every stateful component of the pipeline keeps the state of all sources in one
:class:`~nqp._state.BatchState` whose arrays have a leading row axis. The store maps a
source name to its row, grows the arrays (doubling up to :data:`GROWTH_STEP_ROWS` rows,
then by that many at a time), and evicts the least recently used source beyond
``max_sources``: the evicted row is serialised to bytes (a checkpoint) and handed to a
:class:`CheckpointSink`, from which the source is restored, exactly, the next time it is
seen.

A checkpoint holds every component's row plus a small JSON header with the source name, a
format version and the fingerprint of the settings that produced it; restoring under other
settings is refused. Format 2 (written since 2026-12-07) is ``b"NQPSTATE"``, the header's
length (uint32, little-endian), the header (UTF-8 JSON, which also lists each array's name,
dtype and shape in order) and the arrays' bytes, C order, back to back: nothing to parse
per array, so a checkpoint is made and read in tens of microseconds rather than the
milliseconds of format 1, a NumPy ``.npz`` archive of one member per array (still read).
Neither format can hold pickled objects.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from nqp._state import BatchState
from nqp.exceptions import InvalidInputError

__all__ = ["GROWTH_STEP_ROWS", "CheckpointSink", "MemoryCheckpointSink", "SourceStore"]

#: Beyond this many rows the store grows by this many at a time instead of doubling: its
#: slack (rows allocated and filled but not yet used) stays under this many rows, about 68 MB
#: with the default engine's ~135 KB a source, where doubling left up to as many rows as were
#: in use (e.g. 2,100 sources held 4,096 rows, 545 MB instead of 350), and a growth maps and
#: fills at most that much fresh memory at once. Growing in place (``ndarray.resize``) moves
#: no data, so the extra growths cost only the new rows.
GROWTH_STEP_ROWS = 512

_FORMAT_VERSION = 2  # written; format 1 (.npz) is still read
_READABLE = (1, 2)
_MAGIC = b"NQPSTATE"
_PREFIX = struct.Struct("<8sI")  # magic, header length


class CheckpointSink(Protocol):
    """Where evicted sources' checkpoints go (memory by default; the service uses its DB)."""

    def put(self, source: str, data: bytes) -> None: ...

    def get(self, source: str) -> bytes | None: ...

    def delete(self, source: str) -> None: ...


class MemoryCheckpointSink:
    """Checkpoints kept in a dict (embedded default)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def put(self, source: str, data: bytes) -> None:
        self.data[source] = data

    def get(self, source: str) -> bytes | None:
        return self.data.get(source)

    def delete(self, source: str) -> None:
        self.data.pop(source, None)


class SourceStore:
    """Rows of per-source state for many components.

    Parameters
    ----------
    factories : mapping of str to callable
        ``factories[name](n)`` returns a fresh :class:`BatchState` of ``n`` rows for
        component ``name``, every row the same fresh state (a reset row gets a copy).
    max_sources : int
        Sources held in memory; beyond it the least recently used is checkpointed to
        ``sink`` and its row reused.
    fingerprint : str
        Identifies the settings the state belongs to (stored in checkpoints).
    sink : CheckpointSink, optional
        Where evicted checkpoints go; an in-memory dict if omitted.
    """

    def __init__(
        self,
        factories: Mapping[str, Callable[[int], BatchState]],
        *,
        max_sources: int,
        fingerprint: str,
        sink: CheckpointSink | None = None,
        initial_capacity: int = 16,
    ) -> None:
        self.factories = dict(factories)
        self.max_sources = max_sources
        self.fingerprint = fingerprint
        self.sink: CheckpointSink = sink if sink is not None else MemoryCheckpointSink()
        self._capacity = max(1, min(initial_capacity, max_sources))
        self.states: dict[str, BatchState] = {
            name: make(self._capacity) for name, make in self.factories.items()
        }
        # one fresh row per component, copied into rows being reset (a factory gives every
        # row the same fresh state; making it anew for each reset cost more than the copy)
        self._fresh: dict[str, BatchState] = {
            name: make(1) for name, make in self.factories.items()
        }
        # every field's place in a format-2 checkpoint: (key, (component, field), dtype,
        # row shape, offset from the end of the header); the field list as the header
        # spells it (JSON), pre-serialised
        self._layout: list[tuple[str, tuple[str, str], np.dtype, tuple[int, ...], int]] = []
        offset = 0
        for name, state in self._fresh.items():
            for field, value in state.arrays().items():
                key = f"{name}.{field}"
                self._layout.append((key, (name, field), value.dtype, value.shape[1:], offset))
                offset += value[0].nbytes
        self._layout_bytes = offset
        self._layout_fields = [[k, d.str, list(shape)] for k, _, d, shape, _ in self._layout]
        self._fields_json = json.dumps(self._layout_fields)
        self._rows: OrderedDict[str, int] = OrderedDict()  # LRU order: oldest first
        self._free: list[int] = list(range(self._capacity - 1, -1, -1))

    # ------------------------------------------------------------------ lookup
    def __contains__(self, source: str) -> bool:
        return source in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def sources(self) -> list[str]:
        """Sources in memory, least recently used first."""
        return list(self._rows)

    def known(self, source: str) -> bool:
        """Whether the source is in memory or has an evicted checkpoint."""
        return source in self._rows or self.sink.get(source) is not None

    def row(self, source: str) -> int | None:
        """The source's row if it is in memory (does not touch the LRU order)."""
        return self._rows.get(source)

    def peek(self, source: str) -> dict[str, np.ndarray]:
        """The source's state as ``{"component.field": array}``, read-only.

        Read from its row if it is in memory, else from its checkpoint, which is neither
        restored nor removed: nothing is evicted and the LRU order does not change.

        Raises
        ------
        KeyError
            If the source is unknown.
        """
        row = self._rows.get(source)
        if row is None:
            data = self.sink.get(source)
            if data is None:
                raise KeyError(source)
            checked = self._checked_arrays(data, source)
            return {f"{name}.{field}": value for (name, field), value in checked.items()}
        out = {}
        for name, state in self.states.items():
            for field, value in state.arrays().items():
                view = np.asarray(value[row]).view()  # a row's view (or a 0-d copy)
                view.flags.writeable = False
                out[f"{name}.{field}"] = view
        return out

    # ------------------------------------------------------------------ rows
    def acquire(self, sources: Iterable[str], *, pinned: Iterable[str] = ()) -> np.ndarray:
        """Rows of ``sources`` (distinct), creating or restoring them as needed.

        Sources in ``pinned`` (and ``sources`` themselves) are never evicted to make room.
        Returns an int array of rows in the order of ``sources``; every source becomes the
        most recently used.
        """
        names = list(sources)
        keep = set(names) | set(pinned)
        rows = np.empty(len(names), dtype=np.intp)
        missing = sum(name not in self._rows for name in names)
        short = missing - len(self._free)
        if short > 0 and self._capacity < self.max_sources:  # grow once for all of them
            step = min(self._capacity, GROWTH_STEP_ROWS)
            self._grow(min(self._capacity + max(step, short), self.max_sources))
        fresh: list[tuple[int, str]] = []
        reused: list[int] = []  # rows of evicted sources: the others are fresh already
        for i, name in enumerate(names):
            row = self._rows.get(name)
            if row is None:
                if self._free:
                    row = self._free.pop()
                else:
                    row = self._evict_for(keep)
                    reused.append(row)
                self._rows[name] = row
                fresh.append((row, name))
            self._rows.move_to_end(name)
            rows[i] = row
        if reused:
            self._reset_rows(reused)
        for row, name in fresh:
            data = self.sink.get(name)
            if data is not None:
                self._load_row(row, name, data)
                self.sink.delete(name)
        return rows

    def _evict_for(self, keep: set[str]) -> int:
        """Checkpoint the least recently used source not in ``keep``; its row (not reset)."""
        for victim in self._rows:  # oldest first
            if victim not in keep:
                return self.evict(victim, reuse=True)
        raise InvalidInputError(
            f"A single batch touches more than max_sources={self.max_sources} sources."
        )

    def _grow(self, capacity: int) -> None:
        old = slice(0, self._capacity)
        for name, state in self.states.items():
            if not state.grow(capacity, self._fresh[name]):  # in place, unless shared
                grown = self.factories[name](capacity)
                grown.put(old, state)
                self.states[name] = grown
        self._free.extend(range(capacity - 1, self._capacity - 1, -1))
        self._capacity = capacity

    def _reset_rows(self, rows: list[int]) -> None:
        for name, state in self.states.items():
            fresh = self._fresh[name]
            for field in state.field_names():
                getattr(state, field)[rows] = getattr(fresh, field)[0]

    def evict(self, source: str, *, reuse: bool = False) -> int:
        """Checkpoint ``source`` to the sink and free its row (returned).

        Free rows always hold fresh state: the row is reset, unless ``reuse`` (the caller
        takes the row over and resets it itself).
        """
        row = self._rows.pop(source)
        self.sink.put(source, self._dump_row(row, source))
        if not reuse:
            self._reset_rows([row])
            self._free.append(row)
        return row

    def drop(self, source: str) -> bool:
        """Forget everything about ``source`` (memory and sink). True if it existed."""
        existed = False
        row = self._rows.pop(source, None)
        if row is not None:
            self._reset_rows([row])
            self._free.append(row)
            existed = True
        if self.sink.get(source) is not None:
            self.sink.delete(source)
            existed = True
        return existed

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, source: str) -> bytes:
        """The source's full state as bytes (it stays in memory)."""
        row = self._rows.get(source)
        if row is None:
            data = self.sink.get(source)
            if data is None:
                raise KeyError(source)
            return data
        return self._dump_row(row, source)

    def restore(self, source: str, data: bytes) -> None:
        """Replace the source's state by a checkpoint (creating the source if needed).

        A checkpoint that does not fit this store is refused before anything changes.
        """
        arrays = self._checked_arrays(data, source)
        row = self.acquire([source])[0]
        self._put_arrays(row, arrays)

    def _dump_row(self, row: int, source: str) -> bytes:
        parts = [
            np.asarray(getattr(self.states[name], field)[row]).tobytes()
            for _, (name, field), _, _, _ in self._layout
        ]
        header = (  # json.dumps of the header, with the field list already serialised
            f'{{"version": {_FORMAT_VERSION}, "source": {json.dumps(source)}, '
            f'"fingerprint": {json.dumps(self.fingerprint)}, "fields": {self._fields_json}}}'
        ).encode()
        return b"".join([_PREFIX.pack(_MAGIC, len(header)), header, *parts])

    def _load_row(self, row: int, source: str, data: bytes) -> None:
        self._put_arrays(row, self._checked_arrays(data, source))

    def _check_header(self, header: Mapping[str, Any], source: str) -> None:
        if header.get("version") not in _READABLE:
            raise InvalidInputError(
                f"Checkpoint format {header.get('version')!r} is not one of {_READABLE}."
            )
        if header.get("fingerprint") != self.fingerprint:
            raise InvalidInputError(
                "Checkpoint was made under different engine settings "
                f"({header.get('fingerprint')!r} != {self.fingerprint!r})."
            )
        if header.get("source") != source:
            raise InvalidInputError(
                f"Checkpoint belongs to source {header.get('source')!r}, not {source!r}."
            )

    def _checked_arrays(self, data: bytes, source: str) -> dict[tuple[str, str], NDArray[Any]]:
        """A checkpoint's arrays by (component, field), once all are checked (header,
        names, shapes, dtypes): a checkpoint that does not fit changes nothing."""
        if bytes(data[: len(_MAGIC)]) == _MAGIC:
            header, start = _format_2_header(data)
            self._check_header(header, source)
            if header["fields"] == self._layout_fields:  # this store's own layout
                if len(data) != start + self._layout_bytes:
                    raise InvalidInputError("Not a valid checkpoint: wrong length.")
                return {
                    place: np.frombuffer(data, dtype, math.prod(shape), start + at).reshape(shape)
                    for _, place, dtype, shape, at in self._layout
                }
            arrays = _format_2_arrays(data, header["fields"], start)
        else:
            header, arrays = _read_npz(data)
            self._check_header(header, source)
        places = {key: (place, dtype, shape) for key, place, dtype, shape, _ in self._layout}
        if set(arrays) != set(places):
            raise InvalidInputError("Checkpoint does not hold this engine's state fields.")
        for key, value in arrays.items():
            _, dtype, shape = places[key]
            if value.shape != shape or value.dtype != dtype:
                raise InvalidInputError(f"Checkpoint field {key} has the wrong shape or dtype.")
        return {places[key][0]: value for key, value in arrays.items()}

    def _put_arrays(self, row: int, arrays: Mapping[tuple[str, str], NDArray[Any]]) -> None:
        """Write checked arrays into ``row`` (looked up now: acquiring may have grown them)."""
        for (name, field), value in arrays.items():
            getattr(self.states[name], field)[row] = value


def _invalid(why: str) -> InvalidInputError:
    return InvalidInputError(f"Not a valid checkpoint: {why}.")


def _format_2_header(data: bytes) -> tuple[dict[str, Any], int]:
    """A format-2 checkpoint's header (with its ``fields`` list) and where its data start."""
    if len(data) < _PREFIX.size:
        raise _invalid("truncated header")
    _, n_header = _PREFIX.unpack_from(data)
    start = _PREFIX.size + n_header
    if start > len(data):
        raise _invalid("truncated header")
    try:
        header = json.loads(bytes(data[_PREFIX.size : start]).decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise _invalid(f"unreadable header ({exc})") from exc
    if not isinstance(header, dict) or not isinstance(header.get("fields"), list):
        raise _invalid("no field list")
    return header, start


def _format_2_arrays(data: bytes, fields: list[Any], offset: int) -> dict[str, np.ndarray]:
    """The arrays a format-2 field list describes, read from ``offset`` to the end exactly."""
    arrays: dict[str, np.ndarray] = {}
    for entry in fields:
        try:
            name, dtype_str, shape = entry
            dtype = np.dtype(dtype_str)
            shape = tuple(shape)
            count = math.prod(shape)
        except (TypeError, ValueError) as exc:
            raise _invalid(f"bad field entry {entry!r}") from exc
        if (
            not isinstance(name, str)
            or dtype.hasobject
            or not all(isinstance(n, int) and n >= 0 for n in shape)
        ):
            raise _invalid(f"bad field entry {entry!r}")
        if offset + count * dtype.itemsize > len(data):
            raise _invalid(f"field {name} runs past the end")
        arrays[name] = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
        offset += count * dtype.itemsize
    if offset != len(data):
        raise _invalid(f"{len(data) - offset} bytes after the last field")
    return arrays


def _read_npz(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Format 1: an ``.npz`` archive with the header as a ``__header__`` member."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _invalid(str(exc)) from exc
    raw = arrays.pop("__header__", None)
    if raw is None:
        raise _invalid("no header")
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise _invalid(f"unreadable header ({exc})") from exc
    if not isinstance(header, dict):
        raise _invalid("unreadable header")
    return header, arrays
