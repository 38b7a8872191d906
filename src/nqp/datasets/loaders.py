"""Load real series: any numeric CSV, and classic benchmark data shipped by installed packages.

Nothing here touches the network. The benchmark loaders read the data files that other
packages ship (ReservoirPy's Santa Fe laser, statsmodels' sunspots and CO2) straight from
their installation directory, found with :func:`importlib.util.find_spec` (so neither
package, nor pandas, is imported); when the package is absent they raise
:class:`ModuleNotFoundError` naming it and the command that installs it.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from nqp._validation import Options, validate_params
from nqp.exceptions import FileFormatError, InvalidParameterError

__all__ = [
    "SeriesTable",
    "load_co2",
    "load_csv",
    "load_santa_fe_laser",
    "load_sunspots",
    "package_data_path",
]

_CANDIDATE_DELIMITERS = ",;\t|"
_MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class SeriesTable:
    """A loaded series.

    Attributes
    ----------
    values : ndarray of shape (n,) or (n, k), float64
        The numeric column(s); every value finite.
    timestamps : ndarray of shape (n,), float64, or None
        Seconds (POSIX seconds, UTC, when the file holds dates), or None when there is no
        time column.
    columns : tuple of str
        Names of the value columns (``"0"``, ``"1"``, ... for a file without a header).
    source : str
        Where the data came from (file path).
    """

    values: NDArray[np.float64]
    timestamps: NDArray[np.float64] | None
    columns: tuple[str, ...]
    source: str


def _to_seconds(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH).total_seconds()


def _sniff_delimiter(lines: list[str]) -> str:
    """The candidate delimiter that splits the first lines into the same number (> 1) of fields."""
    best, best_fields = ",", 1
    for d in _CANDIDATE_DELIMITERS:
        counts = {len(row) for row in csv.reader(lines, delimiter=d)}
        if len(counts) == 1 and (n := counts.pop()) > best_fields:
            best, best_fields = d, n
    return best


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _resolve(
    spec: int | str, names: list[str], has_header: bool, path: str, what: str
) -> tuple[int, str]:
    if isinstance(spec, bool) or not isinstance(spec, int | str):
        raise InvalidParameterError(
            f"The {what!r} parameter of load_csv must be a column name or index. "
            f"Got {spec!r} instead."
        )
    if isinstance(spec, int):
        if not -len(names) <= spec < len(names):
            raise FileFormatError(
                f"{path}: column index {spec} is out of range; the file has {len(names)} columns."
            )
        return spec % len(names), names[spec]
    if spec not in names:
        hint = "" if has_header else " (the file has no header row: select columns by index)"
        raise FileFormatError(
            f"{path}: column {spec!r} not found; available columns: "
            f"{', '.join(repr(n) for n in names)}{hint}."
        )
    return names.index(spec), spec


def _read(
    path: str | os.PathLike[str],
    column: int | str | Sequence[int | str] | None,
    time_column: int | str | None,
    delimiter: str | None,
    header: bool | None,
    allow_missing: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, list[str], bool, str]:
    """Parse the file; missing values become NaN when ``allow_missing``."""
    src = os.fspath(path)
    with open(src, encoding="utf-8-sig", newline="") as fh:
        text_lines = fh.read().splitlines()
    meaningful = [ln for ln in text_lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not meaningful:
        raise FileFormatError(f"{src}: the file is empty (no data rows).")
    delim = delimiter if delimiter is not None else _sniff_delimiter(meaningful[:20])
    if len(delim) != 1:
        raise InvalidParameterError(
            f"The 'delimiter' parameter of load_csv must be one character. Got {delim!r} instead."
        )
    reader = csv.reader(text_lines, delimiter=delim, skipinitialspace=True)
    rows: list[tuple[int, list[str]]] = []
    for row in reader:
        if not row or not any(f.strip() for f in row) or row[0].lstrip().startswith("#"):
            continue
        rows.append((reader.line_num, [f.strip() for f in row]))
    first_line, first = rows[0]
    has_header = header if header is not None else not any(_is_number(f) for f in first)
    if has_header:
        names = first
        rows = rows[1:]
    else:
        names = [str(i) for i in range(len(first))]
    if not rows:
        raise FileFormatError(f"{src}: no data rows after the header on line {first_line}.")

    t_idx = None
    if time_column is not None:
        t_idx, _ = _resolve(time_column, names, has_header, src, "time_column")
    if column is None:
        picks = [(i, n) for i, n in enumerate(names) if i != t_idx]
        if not picks:
            raise FileFormatError(f"{src}: no value column besides the time column.")
        squeeze = len(picks) == 1
    elif isinstance(column, int | str):
        picks = [_resolve(column, names, has_header, src, "column")]
        squeeze = True
    else:
        if not isinstance(column, Sequence):
            raise InvalidParameterError(
                "The 'column' parameter of load_csv must be a column name or index, a sequence "
                f"of them, or None. Got {column!r} instead."
            )
        picks = [_resolve(c, names, has_header, src, "column") for c in column]
        squeeze = False
        if not picks:
            raise InvalidParameterError("The 'column' parameter of load_csv selects no column.")

    need = max([i for i, _ in picks] + ([t_idx] if t_idx is not None else []))
    values = np.empty((len(rows), len(picks)))
    times = np.empty(len(rows)) if t_idx is not None else None
    for r, (line, fields) in enumerate(rows):
        if len(fields) <= need:
            raise FileFormatError(
                f"{src}: line {line} has {len(fields)} field(s); column {names[need]!r} needs "
                f"at least {need + 1}."
            )
        for c, (i, name) in enumerate(picks):
            field = fields[i]
            try:
                v = float(field)
            except ValueError:
                if allow_missing and field.lower() in _MISSING_MARKERS:
                    values[r, c] = math.nan
                    continue
                raise FileFormatError(
                    f"{src}: line {line}, column {name!r}: could not convert {field!r} to a number."
                ) from None
            if not math.isfinite(v) and not (allow_missing and math.isnan(v)):
                raise FileFormatError(
                    f"{src}: line {line}, column {name!r}: non-finite value {field!r} "
                    "(NaN and inf are not accepted)."
                )
            values[r, c] = v
        if times is not None and t_idx is not None:
            times[r] = _parse_time(fields[t_idx], line, names[t_idx], src)
    out = values[:, 0] if squeeze else values
    return out, times, [n for _, n in picks], has_header, src


def _parse_time(field: str, line: int, name: str, src: str) -> float:
    try:
        v = float(field)
    except ValueError:
        try:
            return _to_seconds(datetime.fromisoformat(field))
        except ValueError:
            raise FileFormatError(
                f"{src}: line {line}, column {name!r}: {field!r} is neither a number of "
                "seconds nor an ISO 8601 date/time."
            ) from None
    if not math.isfinite(v):
        raise FileFormatError(f"{src}: line {line}, column {name!r}: non-finite time {field!r}.")
    return v


def _handle_missing(
    values: NDArray[np.float64], times: NDArray[np.float64] | None, how: str, src: str
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Drop the rows with a missing value, or fill interior gaps linearly in time."""
    v2 = values.reshape(len(values), -1)
    bad = np.isnan(v2)
    if not bad.any():
        return values, times
    if how == "drop":
        keep = ~bad.any(axis=1)
    else:  # interpolate inside each column, then drop rows still missing at the ends
        x = times if times is not None else np.arange(len(values), dtype=np.float64)
        v2 = v2.copy()
        keep = np.ones(len(values), dtype=bool)
        for c in range(v2.shape[1]):
            ok = ~bad[:, c]
            if not ok.any():
                keep[:] = False
                break
            idx = np.flatnonzero(ok)
            inside = np.zeros(len(values), dtype=bool)
            inside[idx[0] : idx[-1] + 1] = True
            v2[~ok & inside, c] = np.interp(x[~ok & inside], x[ok], v2[ok, c])
            keep &= inside
    v2 = v2[keep]
    if len(v2) == 0:
        raise FileFormatError(f"{src}: every row has a missing value; nothing is left to load.")
    out = v2[:, 0] if values.ndim == 1 else v2
    return out, None if times is None else times[keep]


def load_csv(
    path: str | os.PathLike[str],
    *,
    column: int | str | Sequence[int | str] | None = None,
    time_column: int | str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    missing: str = "error",
) -> SeriesTable:
    """Load numeric column(s) of a delimited text file as float64.

    Parsing rules: UTF-8 (a BOM is ignored); blank lines and lines starting with ``#`` are
    skipped; fields are stripped of surrounding spaces and may be quoted. The delimiter,
    when not given, is the one of ``, ; TAB |`` that splits the first 20 lines into the same
    number (> 1) of fields (a single column otherwise). With ``header=None`` the first row
    is a header exactly when none of its fields is a number.

    Parameters
    ----------
    path : str or path-like
    column : int, str, sequence of int/str, or None, default=None
        Value column(s) by name or index. One column gives ``values`` of shape (n,); a
        sequence gives (n, k); ``None`` takes every column except ``time_column`` (shape
        (n,) when that is a single column).
    time_column : int, str or None, default=None
        Column of timestamps: numbers (taken as seconds) or ISO 8601 dates/times (converted
        to POSIX seconds; naive times are UTC). Order is not checked.
    delimiter : str, optional
        One character; sniffed when omitted.
    header : bool, optional
        Force the first row to be (True) or not be (False) a header.
    missing : {"error", "drop", "interpolate"}, default="error"
        What to do with missing value fields (empty, ``NA``, ``N/A``, ``NaN``, ``null``,
        ``None``): reject them, drop their rows, or fill them linearly in time (in row
        index without ``time_column``); rows still missing at either end after
        interpolation are dropped. ``inf`` is always rejected.

    Returns
    -------
    SeriesTable

    Raises
    ------
    FileFormatError
        For an empty file, a missing column, a short row, a non-numeric or non-finite value,
        naming the line and the column.
    InvalidParameterError
        For a bad ``column``, ``delimiter`` or ``missing``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("time,price\\n2024-01-01T00:00:00,1.5\\n2024-01-01T00:01:00,1.75\\n")
    >>> t = load_csv(p, time_column="time")
    >>> t.values, t.timestamps - t.timestamps[0], t.columns
    (array([1.5 , 1.75]), array([ 0., 60.]), ('price',))
    """
    validate_params(
        "load_csv",
        {"missing": missing, "header": header},
        {"missing": [Options(("error", "drop", "interpolate"))], "header": [bool, None]},
    )
    values, times, names, _, src = _read(
        path, column, time_column, delimiter, header, allow_missing=missing != "error"
    )
    if missing != "error":
        values, times = _handle_missing(values, times, missing, src)
    return SeriesTable(values=values, timestamps=times, columns=tuple(names), source=src)


def package_data_path(package: str, relative: str, *, install: str) -> Path:
    """Path of a data file inside an installed package, without importing the package.

    Parameters
    ----------
    package : str
        Top-level package name (e.g. ``"reservoirpy"``).
    relative : str
        Path of the file inside the package directory.
    install : str
        What to tell the user to install when the package is absent.

    Raises
    ------
    ModuleNotFoundError
        When ``package`` is not installed (its message names the package and ``install``).
    FileNotFoundError
        When the installed version does not ship the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"This dataset ships with the {package!r} package, which is not installed: {install}.",
            name=package,
        )
    for root in spec.submodule_search_locations:
        candidate = Path(root) / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"The installed {package!r} package has no {relative!r} (searched "
        f"{list(spec.submodule_search_locations)}); install a version that ships it."
    )


def load_santa_fe_laser() -> SeriesTable:
    """The Santa Fe competition laser series (data set A), as shipped by ReservoirPy.

    10,093 samples of a far-infrared NH3 laser in a chaotic regime, 8-bit intensities
    (0-255), from Weigend & Gershenfeld (1993), *Time Series Prediction: Forecasting the
    Future and Understanding the Past*; read from ``reservoirpy/datasets/santafe_laser.npy``
    (ReservoirPy is in NQP's ``bench`` extra).

    Returns
    -------
    SeriesTable
        ``values`` of shape (10093,), float64; ``timestamps`` None (uniform sampling, no
        physical time given).

    Raises
    ------
    ModuleNotFoundError
        When reservoirpy is not installed.
    """
    path = package_data_path(
        "reservoirpy",
        "datasets/santafe_laser.npy",
        install="pip install reservoirpy (or pip install 'nqp[bench]')",
    )
    raw = np.load(path, allow_pickle=False)
    values = np.asarray(raw, dtype=np.float64).reshape(-1)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise FileFormatError(f"{path}: expected a finite, non-empty laser series.")
    return SeriesTable(values=values, timestamps=None, columns=("intensity",), source=str(path))


def load_sunspots() -> SeriesTable:
    """Yearly mean sunspot numbers 1700-2008 (309 values), as shipped by statsmodels.

    Read from ``statsmodels/datasets/sunspots/sunspots.csv`` (NOAA NGDC data).

    Returns
    -------
    SeriesTable
        ``values`` of shape (309,), float64; ``timestamps`` the POSIX seconds (UTC) of
        1 January of each year (negative before 1970).

    Raises
    ------
    ModuleNotFoundError
        When statsmodels is not installed.
    """
    path = package_data_path(
        "statsmodels", "datasets/sunspots/sunspots.csv", install="pip install statsmodels"
    )
    values, years, _, _, src = _read(path, "SUNACTIVITY", "YEAR", None, None, False)
    if years is None or np.any(years != np.round(years)):
        raise FileFormatError(f"{src}: the YEAR column must hold whole years.")
    seconds = np.array([_to_seconds(datetime(int(y), 1, 1)) for y in years])
    return SeriesTable(values, seconds, ("SUNACTIVITY",), src)


def load_co2(*, missing: str = "interpolate") -> SeriesTable:
    """Weekly atmospheric CO2 at Mauna Loa, March 1958 - December 2001 (ppmv).

    Read from ``statsmodels/datasets/co2/co2.csv`` (Keeling & Whorf, SIO); 2,284 weeks, of
    which 59 have no measurement.

    Parameters
    ----------
    missing : {"interpolate", "drop"}, default="interpolate"
        Fill the 59 missing weeks linearly in time (2,284 values on a regular weekly grid)
        or drop them (2,225 values).

    Returns
    -------
    SeriesTable
        ``values`` of shape (2284,) or (2225,), float64, in ppmv; ``timestamps`` the POSIX
        seconds (UTC) of each week's date (a Saturday).

    Raises
    ------
    ModuleNotFoundError
        When statsmodels is not installed.
    """
    validate_params(
        "load_co2", {"missing": missing}, {"missing": [Options(("interpolate", "drop"))]}
    )
    path = package_data_path(
        "statsmodels", "datasets/co2/co2.csv", install="pip install statsmodels"
    )
    values, raw_dates, _, _, src = _read(path, "co2", "date", None, None, allow_missing=True)
    if raw_dates is None:  # pragma: no cover - a time column was requested
        raise FileFormatError(f"{src}: no date column.")
    seconds = np.empty(raw_dates.size)
    for i, d in enumerate(raw_dates):  # YYYYMMDD
        ymd = int(d)
        try:
            seconds[i] = _to_seconds(datetime(ymd // 10000, ymd // 100 % 100, ymd % 100))
        except ValueError:
            raise FileFormatError(f"{src}: row {i + 1}: bad YYYYMMDD date {ymd}.") from None
    values, seconds_kept = _handle_missing(values, seconds, missing, src)
    return SeriesTable(values, seconds_kept, ("co2",), src)
