"""Simulated annealing checked against exact enumeration, and its determinism contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import nqp.quantum.annealing as annealing
from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.quantum.annealing import anneal, beta_schedule, default_beta_range
from nqp.quantum.ising import IsingModel
from nqp.quantum.optimize import enumerate_ising


def _random_model(n: int, density: float, seed: int, fields: bool = True) -> IsingModel:
    rng = np.random.default_rng(seed)
    J = np.triu(rng.normal(size=(n, n)), k=1)
    J *= np.triu(rng.random((n, n)) < density, k=1)
    h = rng.normal(size=n) if fields else None
    return IsingModel.from_arrays(h, J, offset=float(rng.normal()))


def _ring(n: int) -> IsingModel:
    i = np.arange(n)
    J = sp.coo_array((np.ones(n), (i, (i + 1) % n)), shape=(n, n))
    return IsingModel.from_arrays(None, J)


def _flip_costs(model: IsingModel, spins: np.ndarray) -> np.ndarray:
    s = spins.astype(np.float64)
    return -2.0 * s * (model.h + model.J @ s)


@pytest.mark.parametrize("n", [8, 12, 16])
@pytest.mark.parametrize("density", [1.0, 0.3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_anneal_finds_the_exact_ground_energy(n, density, seed):
    model = _random_model(n, density, seed)
    exact = enumerate_ising(model)
    res = anneal(model, num_reads=20, num_sweeps=300, seed=seed)
    assert res.best_energy == pytest.approx(exact.energy, abs=1e-9)
    assert any(np.array_equal(res.best_spins, g) for g in exact.ground_states)


def test_energies_are_exact_energies_of_returned_spins():
    model = _random_model(30, 0.2, 5)
    res = anneal(model, num_reads=6, num_sweeps=50, seed=1)
    np.testing.assert_allclose(res.energies, model.energy(res.spins), rtol=0, atol=1e-12)
    assert res.spins.dtype == np.int8
    assert set(np.unique(res.spins)) <= {-1, 1}
    assert res.best_energy == res.energies.min()
    assert res.best_index == int(np.argmin(res.energies))


def test_polished_reads_are_single_flip_local_minima():
    model = _random_model(40, 0.3, 7)
    res = anneal(model, num_reads=8, num_sweeps=5, seed=3)  # too short to anneal fully
    for s in res.spins:
        assert _flip_costs(model, s).min() >= -1e-9


def test_same_seed_same_reads_different_seed_different_reads():
    model = _random_model(60, 0.1, 11)
    a = anneal(model, num_reads=8, num_sweeps=20, seed=42, n_jobs=1)
    b = anneal(model, num_reads=8, num_sweeps=20, seed=42, n_jobs=1)
    c = anneal(model, num_reads=8, num_sweeps=20, seed=43, n_jobs=1)
    np.testing.assert_array_equal(a.spins, b.spins)
    np.testing.assert_array_equal(a.trace_energy, b.trace_energy)
    assert not np.array_equal(a.spins, c.spins)
    # the reads of one run differ from each other too (their own streams)
    assert len({r.tobytes() for r in a.spins}) > 1


@pytest.mark.parametrize("n_jobs", [2, 3])
def test_results_do_not_depend_on_thread_count(n_jobs):
    model = _random_model(80, 0.1, 13)
    one = anneal(model, num_reads=12, num_sweeps=30, seed=7, n_jobs=1)
    many = anneal(model, num_reads=12, num_sweeps=30, seed=7, n_jobs=n_jobs)
    np.testing.assert_array_equal(one.spins, many.spins)
    np.testing.assert_array_equal(one.energies, many.energies)
    np.testing.assert_array_equal(one.trace_energy, many.trace_energy)


def test_read_r_does_not_depend_on_num_reads():
    model = _random_model(50, 0.2, 17)
    few = anneal(model, num_reads=3, num_sweeps=25, seed=9)
    more = anneal(model, num_reads=7, num_sweeps=25, seed=9)
    np.testing.assert_array_equal(few.spins, more.spins[:3])


def test_seed_generator_is_accepted_and_reproducible():
    model = _random_model(20, 0.5, 1)
    a = anneal(model, num_reads=4, num_sweeps=10, seed=np.random.default_rng(5))
    b = anneal(model, num_reads=4, num_sweeps=10, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a.spins, b.spins)
    assert a.seed_state == b.seed_state


def test_trace_is_monotone_and_ends_at_the_last_sweep():
    model = _random_model(60, 0.2, 19)
    res = anneal(model, num_reads=4, num_sweeps=600, seed=2)
    assert res.trace_sweeps[-1] == 600
    assert np.all(np.diff(res.trace_sweeps) > 0)
    t = res.trace_energy
    assert t.shape == (4, res.trace_sweeps.size)
    assert np.all(np.diff(t, axis=1) <= 1e-9)
    best = res.best_trace()
    np.testing.assert_allclose(best, t.min(axis=0))
    # polishing only goes down from the best end-of-sweep state
    assert np.all(res.energies <= t[:, -1] + 1e-9)


def test_lookup_table_path_equals_exp_path(monkeypatch):
    """Integer couplings use a per-sweep table of exp(-beta k q); forcing the exp-per-attempt
    path must give the same decisions, hence the same reads."""
    rng = np.random.default_rng(3)
    n = 40
    J = np.triu(rng.integers(-2, 3, size=(n, n)), k=1).astype(float)
    h = rng.integers(-1, 2, size=n).astype(float)
    model = IsingModel.from_arrays(h, J)
    q, size = annealing._energy_quantum(model.h, model.J.data, 100.0, 0.05)
    assert q == 2.0
    assert size == 102
    assert annealing._energy_quantum(np.array([1.0, np.pi]), np.ones(3), 10.0, 0.1)[0] == 0.0
    kw = {"num_reads": 4, "num_sweeps": 100, "beta_range": (0.05, 3.0), "seed": 4}
    table = anneal(model, polish=False, **kw)
    monkeypatch.setattr(annealing, "_energy_quantum", lambda *a: (0.0, 1))
    direct = anneal(model, polish=False, **kw)
    np.testing.assert_array_equal(table.spins, direct.spins)
    np.testing.assert_array_equal(table.trace_energy, direct.trace_energy)


def test_time_limit_stops_new_reads(monkeypatch):
    ticks = iter(range(1000))
    monkeypatch.setattr(annealing, "_now", lambda: float(next(ticks)))
    model = _random_model(10, 0.5, 0)
    # clock: start=0; read 0 always starts; read 1 checks at 1, read 2 at 2, read 3 at 3 >= 2.5
    res = anneal(model, num_reads=10, num_sweeps=20, seed=0, time_limit=2.5, n_jobs=1)
    assert res.reads_started == 3
    assert res.reads_completed == 3
    assert res.completed.all()
    assert res.energies.shape == (3,)
    full = anneal(model, num_reads=10, num_sweeps=20, seed=0, n_jobs=1)
    np.testing.assert_array_equal(res.spins, full.spins[:3])


def test_time_limit_cuts_a_running_read_between_chunks():
    model = _ring(2000)  # chunks of 4_000_000 // 6001 = 666 sweeps < 1000
    res = anneal(model, num_reads=4, num_sweeps=1000, seed=0, time_limit=1e-9, n_jobs=1)
    assert res.reads_started == 1
    assert res.reads_completed == 0
    assert not res.completed[0]
    assert np.isnan(res.trace_energy[0, -1])
    assert np.isfinite(res.trace_energy[0, 0])
    assert res.best_energy == pytest.approx(float(model.energy(res.best_spins)))


def test_default_beta_range_formula():
    # two spins, one coupling of 2 and a field of 0.5 on spin 0
    m = IsingModel.from_arrays([0.5, 0.0], [[0.0, 2.0], [0.0, 0.0]])
    hot, cold = default_beta_range(m)
    assert hot == pytest.approx(np.log(2) / (2 * 2.5))
    assert cold == pytest.approx(np.log(1 / 0.01) / (2 * 0.5))


def test_typical_rule_uses_rms_local_field():
    # spin 0: h = 0.5, couplings 2 and -1 -> RMS field sqrt(0.25 + 4 + 1); spin 3 isolated
    m = IsingModel.from_arrays(
        [0.5, 0.0, 0.0, 0.25], [[0, 2, -1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    )
    hot, cold = default_beta_range(m, "typical")
    assert hot == pytest.approx(np.log(2) / (2 * np.sqrt(5.25)))
    # smallest non-zero |h| or |J| is 0.25, on spin 3 only
    assert cold == pytest.approx(np.log(1 / 0.01) / (2 * 0.25))
    assert default_beta_range(m)[1] == cold
    assert default_beta_range(m)[0] == pytest.approx(np.log(2) / (2 * 3.5))
    r = anneal(m, num_reads=2, num_sweeps=10, beta_range="typical", seed=0)
    assert r.beta_range == pytest.approx((hot, cold))
    np.testing.assert_allclose(r.betas[[0, -1]], [hot, cold])
    with pytest.raises(InvalidParameterError, match="'rule' parameter"):
        default_beta_range(m, "cosine")


def test_default_beta_range_matches_dwave_samplers():
    sa = pytest.importorskip("dwave.samplers.sa.sampler")
    model = _random_model(25, 0.3, 21)
    Ju = sp.triu(model.J, k=1).tocoo()
    h = {i: float(v) for i, v in enumerate(model.h)}
    J = {(int(i), int(j)): float(v) for i, j, v in zip(Ju.row, Ju.col, Ju.data, strict=True)}
    ref = sa._default_ising_beta_range(h, J)
    np.testing.assert_allclose(default_beta_range(model), ref, rtol=1e-12)


def test_beta_schedule_shapes_and_ends():
    g = beta_schedule((0.1, 10.0), 5)
    np.testing.assert_allclose(g, [0.1, 10**-0.5, 1.0, 10**0.5, 10.0])
    lin = beta_schedule((1.0, 3.0), 3, "linear")
    np.testing.assert_allclose(lin, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(beta_schedule((1.0, 3.0), 1), [3.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_reads": 0}, "'num_reads' parameter of anneal must be an int in \\[1, inf\\)"),
        ({"num_sweeps": 2.5}, "'num_sweeps' parameter"),
        ({"time_limit": 0.0}, "'time_limit' parameter"),
        ({"seed": -1}, "'seed' parameter"),
        ({"n_jobs": 0}, "'n_jobs' parameter"),
        ({"beta_range": (2.0, 1.0)}, "beta_range"),
        ({"beta_range": (0.0, 1.0)}, "beta_range"),
        ({"schedule": "cosine"}, "'kind' parameter"),
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        anneal(_random_model(4, 1.0, 0), **kwargs)


def test_empty_model_is_rejected():
    with pytest.raises(InvalidInputError, match="no variables"):
        anneal(IsingModel.from_arrays(None, np.zeros((0, 0))))
