"""POST /api/v1/optimize/{portfolio,qubo,maxcut} against brute force, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nqp.service.api.routes import optimize
from nqp.service.app import create_app

from .conftest import auth, make_settings, new_key, second_tenant_admin


@pytest.fixture
def client(tmp_path, database_url) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path / "data", database_url))
    if not any(getattr(r, "path", "").startswith(optimize.router.prefix) for r in app.routes):
        app.include_router(optimize.router)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def dev(client, admin_key) -> dict[str, str]:
    return auth(new_key(client, admin_key, role="developer"))


def _post(client, kind: str, body: dict, headers: dict) -> dict:
    r = client.post(f"/api/v1/optimize/{kind}", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _error(client, kind: str, body: dict, headers: dict) -> dict:
    r = client.post(f"/api/v1/optimize/{kind}", json=body, headers=headers)
    assert r.status_code == 422, r.text
    return r.json()["error"]


def _portfolio_instance(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.01, 0.2, n)
    a = rng.normal(0.0, 0.2, (n, n))
    sigma = a @ a.T / n
    return mu, (sigma + sigma.T) / 2


@pytest.mark.parametrize("method", ["exact", "anneal"])
def test_portfolio_equals_brute_force(client, dev, method):
    mu, sigma = _portfolio_instance(9, seed=3)
    budget, q = 3, 2.0
    best = max(
        itertools.combinations(range(9), budget),
        key=lambda s: mu[list(s)].sum() - q * sigma[np.ix_(s, s)].sum(),
    )
    body = {
        "mu": mu.tolist(),
        "sigma": sigma.tolist(),
        "budget": budget,
        "risk_aversion": q,
        "method": method,
        "seed": 7,
        "reads": 8,
        "sweeps": 300,
    }
    out = _post(client, "portfolio", body, dev)
    assert out["method"] == method
    assert out["problem"] == "portfolio"
    assert out["budget_satisfied"] is True
    assert len(out["selected"]) == budget
    assert out["selected"] == list(best)
    x = np.array(out["solution"], dtype=float)
    assert np.flatnonzero(x).tolist() == out["selected"]
    assert out["expected_return"] == pytest.approx(mu @ x, rel=1e-12)
    assert out["risk"] == pytest.approx(x @ sigma @ x, rel=1e-12)
    assert out["objective"] == pytest.approx(mu @ x - q * (x @ sigma @ x), rel=1e-12)
    assert out["energy"] == pytest.approx(-out["objective"], abs=1e-9)
    if method == "anneal":
        assert out["reads_completed"] >= 1
        assert 1 <= len(out["trace"]["sweeps"]) <= optimize.MAX_TRACE_POINTS
        assert out["trace"]["sweeps"][-1] == 300
    else:
        assert out["optimal"] is True
        assert out["trace"]["sweeps"] == []


def test_qubo_equals_enumeration_dense_and_terms(client, dev):
    rng = np.random.default_rng(11)
    n = 11
    Q = rng.normal(0.0, 1.0, (n, n))
    offset = 0.75
    bits = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(float)
    energies = np.einsum("ki,ij,kj->k", bits, Q, bits) + offset
    for method in ("exact", "anneal"):
        out = _post(
            client,
            "qubo",
            {"Q": Q.tolist(), "offset": offset, "method": method, "seed": 1, "sweeps": 400},
            dev,
        )
        x = np.array(out["solution"], dtype=float)
        assert out["variables"] == n
        assert out["energy"] == pytest.approx(energies.min(), abs=1e-9)
        assert x @ Q @ x + offset == pytest.approx(energies.min(), abs=1e-9)
    terms = [[i, j, float(Q[i, j])] for i in range(n) for j in range(n)]
    sparse = _post(client, "qubo", {"n": n, "terms": terms, "offset": offset}, dev)
    assert sparse["energy"] == pytest.approx(energies.min(), abs=1e-9)


def test_maxcut_cut_recomputed_and_optimal(client, dev):
    rng = np.random.default_rng(5)
    n = 12
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.4]
    w = rng.integers(-2, 5, len(pairs)).astype(float)
    edges = [[i, j, float(wk)] for (i, j), wk in zip(pairs, w, strict=True)]
    e = np.array(pairs)
    sides = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    cuts = ((sides[:, e[:, 0]] != sides[:, e[:, 1]]) * w).sum(axis=1)
    for method in ("exact", "anneal"):
        out = _post(client, "maxcut", {"n": n, "edges": edges, "method": method, "seed": 2}, dev)
        part = np.array(out["partition"])
        assert set(part.tolist()) <= {0, 1}
        assert part.shape == (n,)
        recomputed = float(((part[e[:, 0]] != part[e[:, 1]]) * w).sum())
        assert out["cut"] == recomputed
        assert out["cut"] == cuts.max()
        assert out["total_weight"] == w.sum()
        assert out["edges"] == len(edges)
        assert out["nodes"] == n
    # a larger graph goes to the annealer under "auto"; the cut is still the partition's
    n2 = 60
    pairs2 = [(i, (i + k) % n2) for i in range(n2) for k in (1, 7)]
    out = _post(client, "maxcut", {"n": n2, "edges": [list(p) for p in pairs2], "seed": 0}, dev)
    part = np.array(out["partition"])
    assert out["method"] == "anneal"
    assert out["cut"] == sum(part[i] != part[j] for i, j in pairs2)


def test_identical_request_is_cached_and_seed_matters(client, dev):
    body = {"n": 40, "edges": [[i, (i + 1) % 40, 1.0] for i in range(40)], "seed": 4}
    first = _post(client, "maxcut", body, dev)
    second = _post(client, "maxcut", body, dev)
    assert first["cached"] is False
    assert second["cached"] is True
    assert {k: v for k, v in first.items() if k != "cached"} == {
        k: v for k, v in second.items() if k != "cached"
    }
    other = _post(client, "maxcut", {**body, "seed": 5}, dev)
    assert other["cached"] is False
    assert other["problem_hash"] != first["problem_hash"]
    part = other["partition"]
    assert other["cut"] == sum(part[i] != part[(i + 1) % 40] for i in range(40))
    # no seed while annealing: fresh entropy, never served from the cache
    unseeded = {k: v for k, v in body.items() if k != "seed"}
    assert _post(client, "maxcut", unseeded, dev)["cached"] is False
    assert _post(client, "maxcut", unseeded, dev)["cached"] is False


def test_cache_is_per_tenant(client, admin_key, dev):

    body = {"n": 3, "edges": [[0, 1], [1, 2]]}
    assert _post(client, "maxcut", body, dev)["cached"] is False
    other = auth(second_tenant_admin(client))
    assert _post(client, "maxcut", body, other)["cached"] is False
    assert _post(client, "maxcut", body, dev)["cached"] is True


def test_invalid_bodies_name_the_field(client, dev):
    ok = {"n": 4, "edges": [[0, 1, 1.0], [1, 2, 1.0], [2, 3, 1.0]]}
    bad = {**ok, "edges": [[0, 1, 1.0], [2, 2, 1.0]]}
    assert _error(client, "maxcut", bad, dev)["field"] == "edges[1]"
    bad = {**ok, "edges": [[0, 1], [1, 2], [3, 4]]}  # 1-based by mistake
    err = _error(client, "maxcut", bad, dev)
    assert err["field"] == "edges[2]"
    assert "0-based" in err["message"]
    bad = {**ok, "edges": [[0, 1, 2.0, 3.0]]}
    assert _error(client, "maxcut", bad, dev)["field"] == "edges[0]"
    bad = {**ok, "edges": [[0.5, 1, 2.0]]}
    assert _error(client, "maxcut", bad, dev)["field"] == "edges[0]"
    r = client.post(
        "/api/v1/optimize/maxcut",
        content=b'{"n": 3, "edges": [[0, 1, 1.0], [1, 2, NaN]]}',
        headers={**dev, "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "edges[1]"
    assert _error(client, "maxcut", {**ok, "n": 5001}, dev)["field"] == "n"
    assert _error(client, "maxcut", {**ok, "time_limit_s": 31}, dev)["field"] == "time_limit_s"
    assert _error(client, "maxcut", {**ok, "reads": 0}, dev)["field"] == "reads"
    big = {"n": 25, "edges": [[i, i + 1] for i in range(24)], "method": "exact"}
    assert _error(client, "maxcut", big, dev)["field"] == "method"
    assert _error(client, "maxcut", {**ok, "extra": 1}, dev)["field"] == "extra"

    assert _error(client, "qubo", {"Q": [[1.0, 2.0], [3.0]]}, dev)["field"] == "Q[1]"
    both = {"Q": [[1.0]], "n": 1, "terms": [[0, 0, 1.0]]}
    assert _error(client, "qubo", both, dev)["field"] == "Q"
    assert _error(client, "qubo", {"terms": [[0, 0, 1.0]]}, dev)["field"] == "n"
    assert _error(client, "qubo", {"n": 2, "terms": [[0, 2, 1.0]]}, dev)["field"] == "terms[0]"

    p = {"mu": [0.1, 0.2], "sigma": [[0.1, 0.0], [0.0, 0.1]], "budget": 1, "risk_aversion": 1.0}
    assert _error(client, "portfolio", {**p, "budget": 3}, dev)["field"] == "budget"
    not_psd = {**p, "sigma": [[0.1, 0.5], [0.5, 0.1]]}
    err = _error(client, "portfolio", not_psd, dev)
    assert err["field"] == "sigma"
    assert "semi-definite" in err["message"]
    assert _error(client, "portfolio", {**p, "sigma": [[0.1, 0.0]]}, dev)["field"] == "sigma"
    assert _error(client, "portfolio", {**p, "mu": [0.1, True]}, dev)["field"] == "mu.1"
    assert _error(client, "portfolio", {**p, "risk_aversion": -1}, dev)["field"] == "risk_aversion"


def test_roles_viewer_forbidden(client, admin_key):
    viewer = auth(new_key(client, admin_key, role="viewer"))
    dev = auth(new_key(client, admin_key, role="developer"))
    body = {"n": 2, "edges": [[0, 1, 1.0]]}
    assert client.post("/api/v1/optimize/maxcut", json=body, headers=viewer).status_code == 403
    q = {"Q": [[1.0]]}
    assert client.post("/api/v1/optimize/qubo", json=q, headers=viewer).status_code == 403
    p = {"mu": [0.1], "sigma": [[0.1]], "budget": 1, "risk_aversion": 1.0}
    assert client.post("/api/v1/optimize/portfolio", json=p, headers=viewer).status_code == 403
    assert client.post("/api/v1/optimize/maxcut", json=body).status_code == 401
    assert _post(client, "maxcut", body, dev)["cut"] == 1.0
    assert _post(client, "maxcut", body, auth(admin_key))["cut"] == 1.0


def test_busy_optimiser_answers_429(client, dev):
    gate = optimize.optimize_gate(client.app.state.runtime)
    gate.inside = gate.running + gate.waiting  # every slot and queue place taken
    try:
        r = client.post("/api/v1/optimize/qubo", json={"Q": [[-1.0]]}, headers=dev)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
    finally:
        gate.inside = 0
    out = _post(client, "qubo", {"Q": [[-1.0]]}, dev)
    assert out["energy"] == -1.0
    assert out["cached"] is False
    assert gate.inside == 0
