"""CSV loading (formats, errors naming line and column) and the packaged benchmark series."""

from __future__ import annotations

import gc
import importlib.util
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nqp.datasets import loaders
from nqp.datasets.loaders import (
    load_co2,
    load_csv,
    load_santa_fe_laser,
    load_sunspots,
    package_data_path,
)
from nqp.exceptions import FileFormatError, InvalidParameterError

HAS_RESERVOIRPY = importlib.util.find_spec("reservoirpy") is not None
HAS_STATSMODELS = importlib.util.find_spec("statsmodels") is not None
HAS_PANDAS = importlib.util.find_spec("pandas") is not None
NEEDS_STATSMODELS = pytest.mark.skipif(
    not HAS_STATSMODELS, reason="statsmodels not installed (pip install statsmodels)"
)


def _write(tmp_path, text, name="data.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_text(text, encoding=encoding)
    return p


def test_header_and_single_value_column(tmp_path):
    p = _write(tmp_path, "t,price\n0,1.5\n60,2.5\n120,-3e-2\n")
    t = load_csv(p, time_column="t")
    np.testing.assert_array_equal(t.values, [1.5, 2.5, -0.03])
    np.testing.assert_array_equal(t.timestamps, [0, 60, 120])
    assert t.columns == ("price",)
    assert t.values.dtype == np.float64
    assert t.source == str(p)
    # without a time column every column is a value column
    both = load_csv(p)
    assert both.values.shape == (3, 2)
    assert both.timestamps is None
    assert both.columns == ("t", "price")


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path, delim):
    rows = ["a", "b", "c"], ["1", "2", "3"], ["4", "5", "6"]
    p = _write(tmp_path, "\n".join(delim.join(r) for r in rows) + "\n")
    t = load_csv(p, column=["c", "a"])
    np.testing.assert_array_equal(t.values, [[3, 1], [6, 4]])
    assert t.columns == ("c", "a")


def test_no_header_columns_by_index(tmp_path):
    p = _write(tmp_path, "1;2;3\n4;5;6\n")
    t = load_csv(p, column=-1)
    np.testing.assert_array_equal(t.values, [3, 6])
    assert t.columns == ("2",)
    assert load_csv(p, column=[0, 2]).values.shape == (2, 2)
    with pytest.raises(FileFormatError, match="no header row"):
        load_csv(p, column="a")
    # forcing header=True turns the first row into names
    assert load_csv(p, header=True, column="2").values.tolist() == [5.0]


def test_single_column_file(tmp_path):
    p = _write(tmp_path, "value\n1\n2\n3\n")
    t = load_csv(p)
    assert t.values.shape == (3,)
    assert t.columns == ("value",)


def test_iso_timestamps_comments_blank_lines_bom_and_quotes(tmp_path):
    text = (
        "# exported by a logger\n"
        'time,"temp"\n'
        "\n"
        "2024-03-01T00:00:00Z, 20.5\n"
        '2024-03-01 00:00:30,"21"\n'
        "# a comment in the middle\n"
        "2024-03-01T01:00:30+01:00,21.5\n"
    )
    p = _write(tmp_path, text, encoding="utf-8-sig")
    t = load_csv(p, time_column="time")
    t0 = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
    np.testing.assert_array_equal(t.timestamps, [t0, t0 + 30, t0 + 30])
    np.testing.assert_array_equal(t.values, [20.5, 21.0, 21.5])
    assert t.columns == ("temp",)


def test_non_numeric_value_names_line_and_column(tmp_path):
    p = _write(tmp_path, "# c\ntime,price\n1,2\n\n2,abc\n")
    with pytest.raises(FileFormatError, match=r"line 5, column 'price'.*'abc'"):
        load_csv(p, time_column="time")


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", "NaN"])
def test_non_finite_values_are_rejected_with_their_line(tmp_path, bad):
    p = _write(tmp_path, f"x,y\n1,2\n3,{bad}\n")
    with pytest.raises(FileFormatError, match=r"line 3, column 'y'.*non-finite"):
        load_csv(p)


def test_empty_and_header_only_files(tmp_path):
    with pytest.raises(FileFormatError, match="empty"):
        load_csv(_write(tmp_path, ""))
    with pytest.raises(FileFormatError, match="empty"):
        load_csv(_write(tmp_path, "# only a comment\n\n"))
    with pytest.raises(FileFormatError, match="no data rows after the header on line 1"):
        load_csv(_write(tmp_path, "a,b\n"))


def test_missing_column_lists_the_available_ones(tmp_path):
    p = _write(tmp_path, "a,b\n1,2\n")
    with pytest.raises(FileFormatError, match=r"column 'c' not found; available columns: 'a', 'b'"):
        load_csv(p, column="c")
    with pytest.raises(FileFormatError, match="column 'zz' not found"):
        load_csv(p, time_column="zz")
    with pytest.raises(FileFormatError, match="index 5 is out of range"):
        load_csv(p, column=5)
    with pytest.raises(FileFormatError, match="no value column"):
        load_csv(_write(tmp_path, "t\n1\n", "t.csv"), time_column="t")


def test_short_row_and_bad_time_name_the_line(tmp_path):
    p = _write(tmp_path, "a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(FileFormatError, match=r"line 3 has 2 field\(s\); column 'c'"):
        load_csv(p)
    p = _write(tmp_path, "t,v\n2024-01-01,1\nyesterday,2\n", "t.csv")
    with pytest.raises(FileFormatError, match=r"line 3, column 't'.*'yesterday'"):
        load_csv(p, time_column="t")


def test_missing_values_error_drop_or_interpolate(tmp_path):
    p = _write(tmp_path, "t,v,w\n0,,1\n10,1.0,2\n20,NA,3\n50,4.0,\n60,5,6\n70,,7\n")
    with pytest.raises(FileFormatError, match=r"line 2, column 'v'"):
        load_csv(p, time_column="t")
    d = load_csv(p, time_column="t", missing="drop")
    np.testing.assert_array_equal(d.timestamps, [10, 60])
    np.testing.assert_array_equal(d.values, [[1, 2], [5, 6]])
    i = load_csv(p, time_column="t", missing="interpolate")
    # linear in time; rows missing at either end (t = 0 for v, t = 70 for v) are dropped
    np.testing.assert_array_equal(i.timestamps, [10, 20, 50, 60])
    np.testing.assert_allclose(i.values[:, 0], [1.0, 1.0 + 3.0 * 10 / 40, 4.0, 5.0])
    np.testing.assert_allclose(i.values[:, 1], [2.0, 3.0, 3.0 + 3.0 * 30 / 40, 6.0])
    # without a time column the row index is the interpolation axis
    j = load_csv(p, column="v", missing="interpolate")
    np.testing.assert_allclose(j.values, [1.0, 2.5, 4.0, 5.0])


def test_bad_parameters(tmp_path):
    p = _write(tmp_path, "a,b\n1,2\n")
    with pytest.raises(InvalidParameterError, match="'missing'"):
        load_csv(p, missing="zero")
    with pytest.raises(InvalidParameterError, match="'delimiter'"):
        load_csv(p, delimiter=",,")
    with pytest.raises(InvalidParameterError, match="'column'"):
        load_csv(p, column=1.5)
    with pytest.raises(InvalidParameterError, match="'header'"):
        load_csv(p, header="yes")
    with pytest.raises(FileNotFoundError):
        load_csv(tmp_path / "absent.csv")


@settings(max_examples=30, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 4)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
    )
)
def test_round_trip_of_savetxt_is_exact(tmp_path_factory, x):
    p = tmp_path_factory.mktemp("rt") / "x.csv"
    names = ",".join(f"c{j}" for j in range(x.shape[1]))
    np.savetxt(p, x, delimiter=",", header=names, comments="", fmt="%.17g")
    t = load_csv(p, column=list(range(x.shape[1])))
    np.testing.assert_array_equal(t.values, x)


def test_absent_package_raises_module_not_found_naming_it(monkeypatch):
    real = importlib.util.find_spec

    def fake(name, *args):
        return None if name in ("reservoirpy", "statsmodels") else real(name, *args)

    monkeypatch.setattr(loaders.importlib.util, "find_spec", fake)
    with pytest.raises(ModuleNotFoundError, match="pip install reservoirpy") as info:
        load_santa_fe_laser()
    assert info.value.name == "reservoirpy"
    with pytest.raises(ModuleNotFoundError, match="pip install statsmodels"):
        load_sunspots()
    with pytest.raises(ModuleNotFoundError, match="'statsmodels'"):
        load_co2()


def test_package_without_the_file_is_reported():
    with pytest.raises(FileNotFoundError, match=r"no 'not/there\.csv'"):
        package_data_path("numpy", "not/there.csv", install="pip install numpy")


@pytest.mark.skipif(not HAS_RESERVOIRPY, reason="reservoirpy not installed (bench extra)")
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # reservoirpy leaves its file open
def test_santa_fe_laser_matches_reservoirpy():
    t = load_santa_fe_laser()
    assert t.values.shape == (10093,)
    assert t.values.dtype == np.float64
    assert t.timestamps is None
    np.testing.assert_array_equal(t.values[:5], [86, 141, 95, 41, 22])
    assert t.values.min() >= 0
    assert t.values.max() <= 255
    np.testing.assert_array_equal(t.values, np.round(t.values))  # 8-bit intensities
    from reservoirpy.datasets import santafe_laser

    np.testing.assert_array_equal(t.values, santafe_laser().ravel())
    gc.collect()


@NEEDS_STATSMODELS
def test_sunspots_yearly_1700_to_2008():
    t = load_sunspots()
    assert t.values.shape == (309,)
    years = [datetime.fromtimestamp(s, tz=UTC).year for s in t.timestamps]
    assert years == list(range(1700, 2009))
    assert all(datetime.fromtimestamp(s, tz=UTC).timetuple()[1:3] == (1, 1) for s in t.timestamps)
    assert t.values[0] == 5.0
    assert t.values[-1] == 2.9
    assert t.values.min() >= 0
    assert 150 < t.values.max() < 200  # 1957 maximum, 190.2
    assert years[int(np.argmax(t.values))] == 1957
    if HAS_PANDAS:
        from statsmodels.datasets import sunspots

        ref = sunspots.load_pandas().data
        np.testing.assert_array_equal(t.values, ref["SUNACTIVITY"].to_numpy(dtype=float))


@NEEDS_STATSMODELS
def test_co2_weekly_mauna_loa():
    t = load_co2()
    assert t.values.shape == (2284,)
    week = 7 * 86_400.0
    np.testing.assert_array_equal(np.diff(t.timestamps), week)
    assert datetime.fromtimestamp(t.timestamps[0], tz=UTC).date().isoformat() == "1958-03-29"
    assert datetime.fromtimestamp(t.timestamps[-1], tz=UTC).date().isoformat() == "2001-12-29"
    assert t.values[0] == 316.1
    assert t.values[-1] == 371.5
    assert 310 < t.values.min() < t.values.max() < 380
    assert np.all(np.isfinite(t.values))
    # the yearly means rise (Keeling curve): 1960 below 320 ppm, 2000 above 365 ppm
    yr = np.array([datetime.fromtimestamp(s, tz=UTC).year for s in t.timestamps])
    assert t.values[yr == 1960].mean() < 320 < 365 < t.values[yr == 2000].mean()
    dropped = load_co2(missing="drop")
    assert dropped.values.shape == (2225,)
    kept = np.isin(t.timestamps, dropped.timestamps)
    np.testing.assert_array_equal(t.values[kept], dropped.values)
    # interpolated weeks lie between their measured neighbours
    for k in np.flatnonzero(~kept):
        lo = np.max(np.flatnonzero(kept[:k]))
        hi = k + np.min(np.flatnonzero(kept[k:]))
        a, b = t.values[lo], t.values[hi]
        assert min(a, b) <= t.values[k] <= max(a, b)
        expected = a + (b - a) * (k - lo) / (hi - lo)
        assert t.values[k] == pytest.approx(expected, rel=1e-12)
    if HAS_PANDAS:
        from statsmodels.datasets import co2

        ref = co2.load_pandas().data["co2"]
        assert int(ref.isna().sum()) == 59
        np.testing.assert_array_equal(dropped.values, ref.dropna().to_numpy(dtype=float))
        ref_seconds = ref.dropna().index.to_numpy().astype("datetime64[s]").astype(float)
        np.testing.assert_array_equal(dropped.timestamps, ref_seconds)
    with pytest.raises(InvalidParameterError, match="'missing'"):
        load_co2(missing="error")
