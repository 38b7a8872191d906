"""Problem builders and file readers: max-cut (Gset), QUBO JSON, portfolio JSON."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from nqp.exceptions import FileFormatError, InvalidInputError, InvalidParameterError
from nqp.quantum.ising import qubo_energy
from nqp.quantum.problems import (
    MaxCutProblem,
    PortfolioProblem,
    cut_value,
    parse_gset,
    read_gset,
    read_portfolio_json,
    read_qubo_json,
)

GSET = Path(__file__).parents[2] / "../shared/data/gset"


def _gset_or_skip(name: str) -> Path:
    path = GSET / name
    if not path.exists():
        pytest.skip(f"Gset data not found at {path.resolve()} (shared/ beside the repo)")
    return path


def test_g1_loads_with_800_nodes_and_19176_edges():
    p = read_gset(_gset_or_skip("G1.txt"))
    assert p.n_nodes == 800
    assert p.edges.shape == (19176, 2)
    assert p.total_weight == 19176.0
    assert p.edges.min() == 0
    assert p.edges.max() == 799
    model = p.to_ising()
    assert model.J.nnz == 2 * 19176
    assert np.all(model.h == 0)


def test_g22_loads():
    p = read_gset(_gset_or_skip("G22.txt"))
    assert (p.n_nodes, p.edges.shape[0]) == (2000, 19990)


def test_cut_equals_half_of_w_minus_energy(rng):
    n = 30
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.3])
    w = rng.normal(size=len(pairs))
    p = MaxCutProblem.from_edges(n, pairs, w)
    model = p.to_ising()
    for _ in range(20):
        s = rng.choice([-1, 1], size=n)
        direct = sum(wk for (i, j), wk in zip(pairs, w, strict=True) if s[i] != s[j])
        assert p.cut_value(s) == pytest.approx(direct)
        assert p.cut_value((s + 1) // 2) == pytest.approx(direct)
        assert p.cut_from_energy(float(model.energy(s))) == pytest.approx(direct)


def test_parallel_edges_add_up():
    p = MaxCutProblem.from_edges(2, [(0, 1), (1, 0)], [1.0, 2.0])
    assert p.to_ising().J[0, 1] == 3.0
    assert p.cut_value([0, 1]) == 3.0
    assert cut_value([(0, 1), (1, 0)], [1.0, 2.0], [1, -1]) == 3.0


def test_maxcut_problem_validation():
    with pytest.raises(InvalidInputError, match="self-loops"):
        MaxCutProblem.from_edges(3, [(1, 1)])
    with pytest.raises(InvalidInputError, match=r"\[0, 2\]"):
        MaxCutProblem.from_edges(3, [(0, 3)])
    with pytest.raises(InvalidInputError, match="partition has shape"):
        MaxCutProblem.from_edges(3, [(0, 1)]).cut_value([0, 1])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty file"),
        ("3\n1 2 1\n", "line 1: expected a header"),
        ("3 x\n", "line 1: expected a header"),
        ("0 0\n", "line 1: the header needs nodes >= 1"),
        ("3 2\n1 2 1\n2 3\n", "line 3: expected an edge 'i j w'"),
        ("3 2\n1 2 1\n2 3 a\n", "line 3: expected an edge"),
        ("3 2\n1 2 1\n2 1.5 1\n", "line 3: expected an edge"),
        ("3 2\n1 2 1\n\n2 4 1\n", "line 4: node numbers must lie in 1..3, got 2 and 4"),
        ("3 2\n0 2 1\n2 3 1\n", "line 2: node numbers must lie in 1..3"),
        ("3 2\n1 2 1\n3 3 1\n", "line 3: self-loop on node 3"),
        ("3 2\n1 2 inf\n2 3 1\n", "line 2: the weight must be finite"),
        (
            "3 2\n1 2 1\n",
            "line 2 \\(end of file\\): the header on line 1 declares 2 edges, found 1",
        ),
        ("3 1\n1 2 1\n2 3 1\n", "line 3: more edges than the 1 declared on line 1"),
    ],
)
def test_bad_gset_names_the_line(text, match, tmp_path):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(FileFormatError, match=match) as info:
        read_gset(f)
    assert str(f) in str(info.value)


def test_parse_gset_skips_blank_lines_and_takes_real_weights():
    p = parse_gset("\n4 3\n1 2 0.5\n\n2 3 -2\n3 4 1e0\n\n")
    assert p.edges.tolist() == [[0, 1], [1, 2], [2, 3]]
    assert p.weights.tolist() == [0.5, -2.0, 1.0]


def test_binary_file_is_a_format_error(tmp_path):
    f = tmp_path / "b.txt"
    f.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(FileFormatError, match="not a text file"):
        read_gset(f)


def test_qubo_json_dense_and_terms_agree(tmp_path, rng):
    n = 6
    Q = rng.normal(size=(n, n))
    dense = tmp_path / "d.json"
    dense.write_text(json.dumps({"Q": Q.tolist(), "offset": 0.5}))
    terms = tmp_path / "t.json"
    items = [[i, j, float(Q[i, j])] for i in range(n) for j in range(n)]
    terms.write_text(json.dumps({"n": n, "terms": [*items, [0, 0, 1.0]], "offset": 0.5}))
    Qd, od = read_qubo_json(dense)
    Qt, ot = read_qubo_json(terms)
    xs = np.array(list(itertools.product([0, 1], repeat=n)), dtype=float)
    e_ref = qubo_energy(Q, xs, 0.5) + xs[:, 0]  # the repeated [0, 0, 1] term adds x_0
    np.testing.assert_allclose(qubo_energy(Qd, xs, od), e_ref - xs[:, 0])
    np.testing.assert_allclose(qubo_energy(Qt.toarray(), xs, ot), e_ref)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"Q": [[1, 2]]}', "field 'Q' must be a non-empty square"),
        ('{"Q": [[1, "a"], [0, 1]]}', "field 'Q'"),
        ('{"Q": [1, 2]}', "field 'Q'.*2 dimensions"),
        ('{"Q": [[1]], "offset": "x"}', "field 'offset'"),
        ('{"x": 1}', "missing field 'Q' \\(dense\\) or 'terms'"),
        ('{"terms": [[0, 0, 1]]}', "field 'n' must be a positive integer"),
        ('{"n": 2, "terms": [[0, 1, 1], [0, 2, 1]]}', "field 'terms', term 1: indices"),
        ('{"n": 2, "terms": [[0, 1]]}', "field 'terms', term 0: expected \\[i, j, w\\]"),
        ('{"n": 2, "terms": [[0, 1.5, 1]]}', "term 0"),
        ('{"n": 2, "terms": 5}', "field 'terms' must be a list"),
        ('{"Q": [[1, 2],\n [3, 4]', "line 2, column 8: invalid JSON"),
    ],
)
def test_bad_qubo_json_names_the_field(payload, match, tmp_path):
    f = tmp_path / "q.json"
    f.write_text(payload)
    with pytest.raises(FileFormatError, match=match):
        read_qubo_json(f)


def _brute_qubo_energies(Q, offset, n):
    xs = np.array(list(itertools.product([0, 1], repeat=n)), dtype=float)
    return xs, qubo_energy(Q, xs, offset)


def _portfolio(n, k, seed, q=1.5):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n)) * 0.2
    return PortfolioProblem(rng.normal(0.1, 0.1, size=n), A @ A.T, k, q)


@pytest.mark.parametrize(("n", "k", "seed"), [(6, 2, 0), (7, 3, 1), (8, 5, 2)])
def test_portfolio_qubo_is_negative_objective_plus_penalty(n, k, seed):
    p = _portfolio(n, k, seed)
    Q, offset = p.to_qubo()
    xs, e = _brute_qubo_energies(Q, offset, n)
    P = p.penalty_value()
    for x, ex in zip(xs.astype(int), e, strict=True):
        obj = p.evaluate(x)["objective"]
        assert ex == pytest.approx(-obj + P * (x.sum() - k) ** 2, abs=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_default_penalty_makes_every_local_minimum_meet_the_budget(seed):
    """The bound in default_penalty: single-flip local minima of the QUBO are feasible,
    hence so are its ground states."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 10))
    k = int(rng.integers(1, n))
    p = _portfolio(n, k, seed, q=float(rng.uniform(0.0, 5.0)))
    Q, offset = p.to_qubo()
    xs, e = _brute_qubo_energies(Q, offset, n)
    index = {tuple(x): i for i, x in enumerate(xs.astype(int))}
    n_local = 0
    for x, ex in zip(xs.astype(int), e, strict=True):
        neighbours = []
        for i in range(n):
            y = x.copy()
            y[i] ^= 1
            neighbours.append(e[index[tuple(y)]])
        if ex <= min(neighbours):
            n_local += 1
            assert x.sum() == k
    assert n_local >= 1
    assert xs[np.argmin(e)].sum() == k


def test_too_small_penalty_can_break_the_budget():
    """Regression guard for the bound: without it the ground state may leave the budget."""
    p = PortfolioProblem(
        [1.0, 1.0, 1.0], np.eye(3) * 0.01, budget=1, risk_aversion=0.0, penalty=0.1
    )
    Q, offset = p.to_qubo()
    xs, e = _brute_qubo_energies(Q, offset, 3)
    assert xs[np.argmin(e)].sum() != 1
    assert PortfolioProblem([1.0] * 3, np.eye(3) * 0.01, 1, 0.0).default_penalty() > 1.0


def test_portfolio_evaluate_figures():
    p = PortfolioProblem([0.1, 0.2, 0.3], [[0.04, 0.01, 0], [0.01, 0.09, 0], [0, 0, 0.16]], 2, 2.0)
    ev = p.evaluate([1, 1, 0])
    assert ev["selected"] == [0, 1]
    assert ev["expected_return"] == pytest.approx(0.3)
    assert ev["risk"] == pytest.approx(0.04 + 0.09 + 2 * 0.01)
    assert ev["objective"] == pytest.approx(0.3 - 2.0 * 0.15)
    assert ev["budget_satisfied"]
    assert not p.evaluate([1, 1, 1])["budget_satisfied"]
    with pytest.raises(InvalidInputError, match="values in"):
        p.evaluate([1, 2, 0])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"budget": 0}, InvalidParameterError, "'budget' parameter of PortfolioProblem"),
        ({"budget": 4}, InvalidInputError, "budget=4 exceeds the 3 assets"),
        ({"risk_aversion": -1.0}, InvalidParameterError, "'risk_aversion' parameter"),
        ({"sigma": [[1, 0.5, 0], [0, 1, 0], [0, 0, 1]]}, InvalidInputError, "symmetric"),
        ({"sigma": [[1, 2, 0], [2, 1, 0], [0, 0, 1]]}, InvalidInputError, "semi-definite"),
        ({"sigma": np.eye(2)}, InvalidInputError, "sigma has shape"),
        ({"mu": [0.1, np.nan, 0.1]}, InvalidInputError, "mu contains 1 non-finite"),
    ],
)
def test_portfolio_validation(kwargs, exc, match):
    args = {"mu": [0.1, 0.2, 0.3], "sigma": np.eye(3), "budget": 2, "risk_aversion": 1.0}
    p = PortfolioProblem(**{**args, **kwargs})  # stores without checking
    with pytest.raises(exc, match=match):
        p.to_qubo()


def test_portfolio_json_round_trip(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(
        json.dumps(
            {"mu": [0.1, 0.2], "sigma": [[0.1, 0], [0, 0.2]], "budget": 1, "risk_aversion": 0.5}
        )
    )
    p = read_portfolio_json(f)
    assert p.budget == 1
    assert p.risk_aversion == 0.5
    np.testing.assert_array_equal(p.mu, [0.1, 0.2])


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"sigma": [[1.0]], "budget": 1, "risk_aversion": 1}, "missing field 'mu'"),
        ({"mu": [0.1], "budget": 1, "risk_aversion": 1}, "missing field 'sigma'"),
        ({"mu": [0.1], "sigma": [[1.0]], "risk_aversion": 1}, "missing field 'budget'"),
        ({"mu": [0.1], "sigma": [[1.0]], "budget": 1}, "missing field 'risk_aversion'"),
        ({"mu": [0.1], "sigma": [[1.0]], "budget": 1.5, "risk_aversion": 1}, "field 'budget'"),
        ({"mu": [0.1], "sigma": [[1.0]], "budget": 2, "risk_aversion": 1}, "field 'budget'"),
        ({"mu": ["a"], "sigma": [[1.0]], "budget": 1, "risk_aversion": 1}, "field 'mu'"),
        (
            {"mu": [0.1, 0.2], "sigma": [[1, 2], [0, 1]], "budget": 1, "risk_aversion": 1},
            "field 'sigma'.*symmetric",
        ),
        (
            {"mu": [0.1], "sigma": [[1.0]], "budget": 1, "risk_aversion": "x"},
            "field 'risk_aversion'",
        ),
        (
            {"mu": [0.1], "sigma": [[1.0]], "budget": 1, "risk_aversion": -2},
            "field 'risk_aversion'",
        ),
    ],
)
def test_bad_portfolio_json_names_the_field(obj, match, tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(obj))
    with pytest.raises(FileFormatError, match=match):
        read_portfolio_json(f)
