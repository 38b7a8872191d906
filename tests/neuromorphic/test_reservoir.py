"""Tests of the LIF and echo-state reservoirs against closed forms and NumPy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.neuromorphic import _kernels
from nqp.neuromorphic.reservoir import (
    EchoStateReservoir,
    ESNState,
    LIFReservoir,
    LIFState,
    Reservoir,
    leading_eigenvalue_modulus,
)

# ---------------------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------------------


def esn_reference(esn: EchoStateReservoir, u: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """float64 leaky-tanh ESN; u (T, S, B, C), x0 (S, N) -> states (T, S, N)."""
    w = esn.W_.toarray().astype(np.float64)
    w_in = esn.W_in_.astype(np.float64)
    b = esn.bias_.astype(np.float64)
    x = x0.astype(np.float64).copy()
    out = []
    for t in range(u.shape[0]):
        for k in range(u.shape[2]):
            x = (1 - esn.leak) * x + esn.leak * np.tanh(x @ w.T + u[t, :, k] @ w_in.T + b)
        out.append(x.copy())
    return np.array(out)


def lif_reference(lif: LIFReservoir, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 LIF from rest; u (T, S, B, C) -> (traces (T, S, N), spikes (T, S, B, N))."""
    w = lif.W_.toarray()
    w_in = lif.W_in_
    n_steps, n_src, n_bins, _ = u.shape
    n = lif.n_neurons
    lam = np.float32(lif.decay_)
    mu = np.float32(lif.trace_decay_)
    v = np.zeros((n_src, n), np.float32)
    ref = np.zeros((n_src, n), np.int64)
    trace = np.zeros((n_src, n), np.float32)
    spk = np.zeros((n_src, n), bool)
    traces, raster = [], []
    for t in range(n_steps):
        bins = []
        for b in range(n_bins):
            current = (
                u[t, :, b].astype(np.float32) @ w_in.T + spk.astype(np.float32) @ w.T
            ).astype(np.float32)
            active = ref <= 0
            v = np.where(active, lam * v + current, v).astype(np.float32)
            spk = active & (v >= np.float32(lif.threshold))
            v[spk] = np.float32(lif.reset)
            ref = np.where(spk, lif.refractory, np.maximum(ref - 1, 0))
            trace = (mu * trace + (np.float32(1) - mu) * spk).astype(np.float32)
            bins.append(spk.copy())
        traces.append(trace.copy())
        raster.append(bins)
    return np.array(traces), np.array(raster).transpose(0, 2, 1, 3)


# ---------------------------------------------------------------------------------------
# LIF single neuron: closed-form inter-spike interval
# ---------------------------------------------------------------------------------------


def _bins_to_threshold(lam: float, current: float, start: float, threshold: float) -> float:
    """Real-valued k solving v_k = threshold for v_k = lam**k * start + I (1-lam**k)/(1-lam)."""
    v_inf = current / (1.0 - lam)
    return math.log((v_inf - threshold) / (v_inf - start)) / math.log(lam)


@pytest.mark.parametrize(
    ("tau_m", "dt", "v_inf_over_theta", "refractory", "reset"),
    [
        (20.0, 1.0, 1.5, 0, 0.0),
        (20.0, 1.0, 1.5, 3, 0.0),
        (10.0, 0.5, 1.2, 2, -0.3),
        (5.0, 1.0, 3.0, 7, 0.2),
        (20.0, 1.0, 40.0, 5, 0.0),  # strongly driven: fires on the first free bin
    ],
)
def test_single_lif_neuron_fires_at_the_analytic_interval(
    tau_m: float, dt: float, v_inf_over_theta: float, refractory: int, reset: float
) -> None:
    # v_{k+1} = lam v_k + I from v_0 = r reaches threshold theta after
    # k* = ceil(log((v_inf - theta)/(v_inf - r)) / log lam) bins, v_inf = I/(1-lam);
    # a spike is followed by `refractory` bins held at reset, so ISI = refractory + k*.
    theta = 1.0
    lif = LIFReservoir(
        n_neurons=1,
        n_inputs=1,
        spectral_radius=0.0,
        input_connectivity=1.0,
        tau_m=tau_m,
        dt=dt,
        threshold=theta,
        reset=reset,
        refractory=refractory,
        seed=4,
    )
    state = lif.init_state(1)
    lam = float(np.float32(lif.decay_))
    w_in = float(lif.W_in_[0, 0])
    target_current = v_inf_over_theta * theta * (1.0 - lam)
    drive = np.float32(target_current / w_in)
    current = float(np.float32(drive) * np.float32(w_in))
    k_first = _bins_to_threshold(lam, current, 0.0, theta)
    k_next = _bins_to_threshold(lam, current, reset, theta)
    # The closed form is checked exactly, so it must not sit on a rounding boundary.
    for k in (k_first, k_next):
        assert min(k - math.floor(k), math.ceil(k) - k) > 1e-3 or k <= 0
    k_first = max(1, math.ceil(k_first))
    k_next = max(1, math.ceil(k_next))

    n_bins = 400
    spikes = []
    for _ in range(n_bins):
        lif.step(state, np.full((1, 1, 1), drive))
        spikes.append(bool(state.spikes[0, 0]))
    times = np.flatnonzero(spikes)

    expected = np.arange(k_first - 1, n_bins, refractory + k_next)
    np.testing.assert_array_equal(times, expected)
    assert len(times) >= 3


def test_refractory_period_holds_in_a_driven_network() -> None:
    refractory = 4
    lif = LIFReservoir(
        n_neurons=60,
        n_inputs=3,
        connectivity=0.2,
        spectral_radius=2.0,
        refractory=refractory,
        input_scaling=3.0,
        input_connectivity=0.5,
        seed=2,
    )
    rng = np.random.default_rng(0)
    state = lif.init_state(3)
    raster = []
    for _ in range(120):
        lif.step(state, rng.random((3, 1, 3)) < 0.6)
        raster.append(state.spikes.copy())
    raster = np.array(raster)  # (T, S, N)
    n_isi = 0
    for s in range(3):
        for i in range(60):
            t = np.flatnonzero(raster[:, s, i])
            isi = np.diff(t)
            n_isi += isi.size
            assert (isi >= refractory + 1).all()
    assert n_isi > 100  # the network really fired repeatedly
    assert (np.diff(np.flatnonzero(raster[:, 0].any(axis=1))) == 1).any()


def test_lif_matches_numpy_reference_spike_for_spike() -> None:
    lif = LIFReservoir(
        n_neurons=40,
        n_inputs=4,
        connectivity=0.25,
        spectral_radius=1.5,
        refractory=2,
        input_scaling=1.5,
        input_connectivity=0.5,
        reset=-0.2,
        seed=11,
    )
    rng = np.random.default_rng(1)
    u = rng.random((15, 3, 5, 4)) < 0.3
    state = lif.init_state(3)
    traces = []
    raster = []
    for t in range(u.shape[0]):
        per_bin = []
        for b in range(u.shape[2]):
            lif.step(state, u[t, :, b : b + 1])
            per_bin.append(state.spikes.copy())
        traces.append(state.trace.copy())
        raster.append(per_bin)
    ref_traces, ref_raster = lif_reference(lif, u)
    got_raster = np.array(raster).transpose(0, 2, 1, 3)
    np.testing.assert_array_equal(got_raster, ref_raster)
    assert ref_raster.sum() > 50
    np.testing.assert_allclose(np.array(traces), ref_traces, rtol=1e-5, atol=1e-6)
    # The same sequence in one run() call (substeps=5 per step) gives the same traces.
    np.testing.assert_allclose(lif.run(u), ref_traces, rtol=1e-5, atol=1e-6)


def test_lif_dale_law_sign_structure() -> None:
    lif = LIFReservoir(n_neurons=300, n_inputs=2, connectivity=0.1, excitatory_fraction=0.8)
    lif.init_state(1)
    w = lif.W_.toarray()
    exc = lif.is_excitatory_
    assert exc.sum() == 240
    assert (w[:, exc] >= 0).all()
    assert (w[:, ~exc] <= 0).all()
    assert (w[:, exc] > 0).sum() > 1000
    assert (w[:, ~exc] < 0).sum() > 200
    assert (lif.W_in_ >= 0).all()


# ---------------------------------------------------------------------------------------
# Echo-state reservoir
# ---------------------------------------------------------------------------------------


def test_esn_matches_float64_reference_single_and_batched() -> None:
    esn = EchoStateReservoir(
        n_neurons=80, n_inputs=2, connectivity=0.2, leak=0.4, bias_scaling=0.3, seed=5
    )
    rng = np.random.default_rng(2)
    u = rng.normal(size=(30, 4, 3, 2))
    x0 = rng.uniform(-0.5, 0.5, (4, 80)).astype(np.float32)
    esn.init_state(1)
    expected = esn_reference(esn, u, x0)
    state = ESNState(x=x0.copy())
    got = esn.run(u, state)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    np.testing.assert_array_equal(state.x, got[-1])
    single = esn.run(u[:, 1, 0, :], ESNState(x=x0[1:2].copy()))  # 2-D input, one source
    np.testing.assert_allclose(single, esn_reference(esn, u[:, 1:2, :1], x0[1:2])[:, 0], atol=2e-5)


def test_esn_with_unit_leak_and_no_recurrence_is_tanh_of_input() -> None:
    esn = EchoStateReservoir(n_neurons=30, n_inputs=3, spectral_radius=0.0, leak=1.0, seed=1)
    u = np.random.default_rng(3).normal(size=(5, 1, 3))
    esn.init_state(1)
    assert esn.W_.nnz == 0
    expected = np.tanh(u[:, 0] @ esn.W_in_.T.astype(np.float64) + esn.bias_)
    np.testing.assert_allclose(esn.run(u[:, 0]), expected, atol=1e-6)


def test_echo_state_property_two_initial_states_converge() -> None:
    esn = EchoStateReservoir(n_neurons=200, n_inputs=1, spectral_radius=0.8, leak=0.5, seed=3)
    rng = np.random.default_rng(4)
    state = ESNState(x=np.stack([np.zeros(200), rng.uniform(-1, 1, 200)]).astype(np.float32))
    u = np.repeat(rng.uniform(-1, 1, (400, 1, 1, 1)), 2, axis=1)
    out = esn.run(u, state)
    assert np.abs(out[0, 0] - out[0, 1]).max() > 1e-2  # they started apart
    assert np.abs(out[-1, 0] - out[-1, 1]).max() < 1e-6


def test_tanh32_accuracy() -> None:
    x = np.concatenate([np.linspace(-20, 20, 400_001), [0.0, 1e-8, -1e-8, 7.9, 9.0]]).astype(
        np.float32
    )
    y = _kernels.tanh32(x)
    assert np.abs(y.astype(np.float64) - np.tanh(x.astype(np.float64))).max() < 5e-7
    np.testing.assert_array_equal(_kernels.tanh32(-x), -y)
    assert _kernels.tanh32(np.zeros(1, np.float32))[0] == 0.0


# ---------------------------------------------------------------------------------------
# Shared interface
# ---------------------------------------------------------------------------------------

FACTORIES = {
    "esn": lambda seed=0: EchoStateReservoir(
        n_neurons=50, n_inputs=3, connectivity=0.2, bias_scaling=0.2, seed=seed
    ),
    "lif": lambda seed=0: LIFReservoir(
        n_neurons=50,
        n_inputs=3,
        connectivity=0.2,
        spectral_radius=1.5,
        input_scaling=2.0,
        input_connectivity=0.5,
        seed=seed,
    ),
}


def _inputs(kind: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random(shape) < 0.4 if kind == "lif" else rng.normal(size=shape)


@pytest.mark.parametrize("kind", ["esn", "lif"])
def test_implements_protocol_and_init_stores_params_only(kind: str) -> None:
    res = FACTORIES[kind]()
    assert isinstance(res, Reservoir)
    assert not hasattr(res, "W_")
    state = res.init_state(2)
    assert len(state) == 2
    assert sp.issparse(res.W_)
    assert res.W_.dtype == np.float32
    assert res.W_.format == "csr"
    assert res.W_in_.shape == (50, 3)


@pytest.mark.parametrize("kind", ["esn", "lif"])
def test_stepping_sources_together_equals_stepping_each_alone(kind: str) -> None:
    res = FACTORIES[kind]()
    u = _inputs(kind, (12, 4, 3, 3))
    together = res.init_state(4)
    alone = [res.init_state(1) for _ in range(4)]
    for t in range(12):
        out = res.step(together, u[t])
        for s in range(4):
            single = res.step(alone[s], u[t, s : s + 1])
            if kind == "lif":
                np.testing.assert_array_equal(out[s], single[0])
            else:
                np.testing.assert_allclose(out[s], single[0], atol=1e-5)
    assert np.abs(out).max() > 0.05
    # gather -> step -> scatter leaves the other rows untouched and equals stepping all
    before = together.copy()
    sub = together.take([2, 0])
    res.step(sub, u[0, [2, 0]])
    together.put([2, 0], sub)
    res.step(before, u[0])
    for name, arr in together.arrays().items():
        expect = getattr(before, name)
        if kind == "esn":
            np.testing.assert_allclose(arr[[0, 2]], expect[[0, 2]], atol=1e-5)
        else:
            np.testing.assert_array_equal(arr[[0, 2]], expect[[0, 2]])


@pytest.mark.parametrize("kind", ["esn", "lif"])
def test_run_equals_repeated_step(kind: str) -> None:
    res = FACTORIES[kind]()
    u = _inputs(kind, (10, 3, 2, 3), seed=1)
    state = res.init_state(3)
    stepped = np.array([res.step(state, u[t]) for t in range(10)])
    ran = res.run(u)
    np.testing.assert_array_equal(ran, stepped)
    assert ran.dtype == np.float32
    assert ran.shape == (10, 3, 50)
    assert res.run(u[:, :, 0, :]).shape == (10, 3, 50)
    assert res.run(u[:, 0, 0, :]).shape == (10, 50)


@pytest.mark.parametrize("kind", ["esn", "lif"])
def test_seed_determinism(kind: str) -> None:
    u = _inputs(kind, (8, 2, 2, 3), seed=2)
    a, b, c = FACTORIES[kind](7), FACTORIES[kind](7), FACTORIES[kind](8)
    ra, rb, rc = a.run(u), b.run(u), c.run(u)
    np.testing.assert_array_equal(a.W_.toarray(), b.W_.toarray())
    np.testing.assert_array_equal(ra, rb)
    assert not np.array_equal(a.W_.toarray(), c.W_.toarray())
    assert not np.array_equal(ra, rc)


@pytest.mark.parametrize(
    "res",
    [
        EchoStateReservoir(n_neurons=400, n_inputs=1, connectivity=0.05, spectral_radius=0.95),
        LIFReservoir(n_neurons=400, n_inputs=1, connectivity=0.1, spectral_radius=1.3, seed=9),
        EchoStateReservoir(n_neurons=60, n_inputs=1, connectivity=0.3, spectral_radius=1.1),
    ],
    ids=["esn-arpack", "lif-arpack", "esn-dense"],
)
def test_spectral_radius_of_w_is_what_was_asked(res: EchoStateReservoir | LIFReservoir) -> None:
    res.init_state(1)
    radius = np.abs(np.linalg.eigvals(res.W_.toarray().astype(np.float64))).max()
    assert radius == pytest.approx(res.spectral_radius, rel=1e-5)
    assert res.spectral_radius_ == pytest.approx(radius, rel=1e-5)


def test_leading_eigenvalue_modulus_matches_dense_where_k1_arpack_fails() -> None:
    # For this random matrix ARPACK with k=1 (default ncv) converges to an eigenvalue
    # 0.38 % below the leading one; the implementation must not.
    rng = np.random.default_rng(1)
    w = sp.random_array((1000, 1000), density=0.1, format="csr", rng=rng)
    w.data = rng.standard_normal(w.nnz)
    dense = np.abs(np.linalg.eigvals(w.toarray())).max()
    assert leading_eigenvalue_modulus(w) == pytest.approx(dense, rel=1e-9)


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (EchoStateReservoir, {"leak": 1.5}, "leak"),
        (EchoStateReservoir, {"leak": 0.0}, "leak"),
        (EchoStateReservoir, {"n_neurons": 0}, "n_neurons"),
        (EchoStateReservoir, {"connectivity": 0.0}, "connectivity"),
        (EchoStateReservoir, {"spectral_radius": -0.1}, "spectral_radius"),
        (EchoStateReservoir, {"bias_scaling": float("nan")}, "bias_scaling"),
        (EchoStateReservoir, {"seed": -1}, "seed"),
        (LIFReservoir, {"refractory": -1}, "refractory"),
        (LIFReservoir, {"refractory": 1.5}, "refractory"),
        (LIFReservoir, {"excitatory_fraction": 1.2}, "excitatory_fraction"),
        (LIFReservoir, {"tau_m": 0.0}, "tau_m"),
        (LIFReservoir, {"trace_tau": -1.0}, "trace_tau"),
        (LIFReservoir, {"dt": 0.0}, "dt"),
        (LIFReservoir, {"input_connectivity": 1.5}, "input_connectivity"),
        (LIFReservoir, {"reset": 1.0, "threshold": 1.0}, "reset"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(cls: type, kwargs: dict, name: str) -> None:
    res = cls(n_inputs=1, **{"n_neurons": 20, **kwargs})
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of {cls.__name__}"):
        res.init_state(1)


def test_unscalable_recurrent_matrix_raises() -> None:
    # 2 neurons, one non-zero weight off the diagonal: W is nilpotent (radius 0).
    for seed in range(50):
        res = EchoStateReservoir(n_neurons=2, connectivity=0.25, spectral_radius=0.9, seed=seed)
        mask = res._random_mask(res._rngs()[0]).toarray()
        if mask[0, 1] or mask[1, 0]:
            break
    else:
        pytest.fail("no seed gave an off-diagonal entry")
    with pytest.raises(InvalidParameterError, match="increase 'connectivity'"):
        res.init_state(1)


@pytest.mark.parametrize("kind", ["esn", "lif"])
def test_bad_input_shapes_raise_with_the_shapes(kind: str) -> None:
    res = FACTORIES[kind]()
    state = res.init_state(2)
    with pytest.raises(InvalidInputError, match=r"\(2, substeps, 3\); got \(3, 1, 3\)"):
        res.step(state, np.zeros((3, 1, 3)))
    with pytest.raises(InvalidInputError, match=r"got \(2, 1, 4\)"):
        res.step(state, np.zeros((2, 1, 4)))
    with pytest.raises(InvalidInputError, match=r"got \(2, 3\)"):
        res.step(state, np.zeros((2, 3)))
    with pytest.raises(InvalidInputError, match="non-finite"):
        res.step(state, np.full((2, 1, 3), np.nan))
    with pytest.raises(InvalidInputError, match="n_inputs=3"):
        res.run(np.zeros((5, 2)))
    with pytest.raises(InvalidInputError, match="u_seq has 4 sources but state has 2"):
        res.run(np.zeros((5, 4, 3)), state)
    other = LIFState if kind == "esn" else ESNState
    bad = other(**{k: np.zeros((2, 50)) for k in other.__dataclass_fields__})
    with pytest.raises(InvalidInputError, match="state must be"):
        res.step(bad, np.zeros((2, 1, 3)))
    state_bad = res.init_state(2)
    first = next(iter(state_bad.arrays()))
    setattr(state_bad, first, np.zeros((2, 49), dtype=getattr(state_bad, first).dtype))
    with pytest.raises(InvalidInputError, match=r"got \(2, 49\)"):
        res.step(state_bad, np.zeros((2, 1, 3)))


def test_lif_raster_out_records_every_bin_and_matches_traces():
    """The recorded raster is the spike train whose exponential filter is the trace."""
    res = LIFReservoir(60, 4, connectivity=0.2, input_scaling=2.0, seed=3)
    state = res.init_state(3)
    rng = np.random.default_rng(0)
    trace = np.zeros((3, 60))
    mu = res.trace_decay_
    for _ in range(5):
        u = rng.random((3, 7, 4)) < 0.5
        raster = np.zeros((3, 7, 60), dtype=bool)
        out = res.step(state, u, raster_out=raster)
        for b in range(7):
            trace = mu * trace + (1 - mu) * raster[:, b]
        np.testing.assert_allclose(out, trace, atol=1e-5)
        np.testing.assert_array_equal(state.spikes, raster[:, -1])
    assert raster.any()


def test_lif_raster_out_shape_is_checked():
    res = LIFReservoir(10, 2, seed=0)
    state = res.init_state(1)
    with pytest.raises(InvalidInputError, match="raster_out"):
        res.step(state, np.zeros((1, 3, 2), dtype=bool), raster_out=np.zeros((1, 2, 10), bool))


@pytest.mark.parametrize("n_blocks", [2, 3, 7])
def test_lif_kernel_result_does_not_depend_on_the_parallel_split(n_blocks: int) -> None:
    """Sources split into blocks (one per thread) give bit-identical states and rasters."""
    lif = LIFReservoir(
        n_neurons=60, n_inputs=3, connectivity=0.2, spectral_radius=1.5, input_scaling=2.0, seed=4
    )
    state0 = lif.init_state(7)
    u = (np.random.default_rng(5).random((6, 7, 4, 3)) < 0.4).astype(np.float32)
    params = (
        np.float32(lif.decay_),
        np.float32(lif.threshold),
        np.float32(lif.reset),
        np.int32(lif.refractory),
        np.float32(lif.trace_decay_),
    )
    results = []
    for blocks in (1, n_blocks):
        state = state0.copy()
        out = np.empty((6, 7, 60), dtype=np.float32)
        record = np.zeros((6, 7, 4, 60), dtype=bool)
        _kernels.lif_run(
            *lif._csc,
            *params,
            state.v,
            state.refractory,
            state.trace,
            state.spikes,
            u,
            out,
            record,
            blocks,
        )
        results.append((out, record, state))
    (out1, rec1, st1), (out2, rec2, st2) = results
    assert rec1.sum() > 50
    np.testing.assert_array_equal(out2, out1)
    np.testing.assert_array_equal(rec2, rec1)
    for name, arr in st1.arrays().items():
        np.testing.assert_array_equal(getattr(st2, name), arr)
    ref_traces, ref_raster = lif_reference(lif, u)
    np.testing.assert_array_equal(rec1, ref_raster)
    np.testing.assert_allclose(out1, ref_traces, rtol=1e-5, atol=1e-6)


def test_esn_single_stream_step_matches_reference_and_run() -> None:
    """One source through step() (the direct kernel path) against float64 and run()."""
    esn = EchoStateReservoir(n_neurons=70, n_inputs=2, connectivity=0.2, bias_scaling=0.3, seed=6)
    u = np.random.default_rng(7).normal(size=(25, 1, 3, 2))
    x0 = np.random.default_rng(8).uniform(-0.5, 0.5, (1, 70)).astype(np.float32)
    esn.init_state(1)
    state = ESNState(x=x0.copy())
    stepped = np.array([esn.step(state, u[t]) for t in range(25)])
    assert stepped.shape == (25, 1, 70)
    np.testing.assert_allclose(stepped, esn_reference(esn, u, x0), atol=2e-5)
    np.testing.assert_array_equal(stepped, esn.run(u, ESNState(x=x0.copy())))
    np.testing.assert_array_equal(state.x, stepped[-1])
    assert np.abs(stepped).max() > 0.05
