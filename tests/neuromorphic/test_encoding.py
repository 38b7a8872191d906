"""SpikeEncoder: each method's defining property, determinism, batching invariance, validation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.neuromorphic.encoding import EncoderState, SpikeEncoder, counter_uniforms

METHODS = ["rate", "temporal", "population", "phase", "delta"]


def _slots(enc: SpikeEncoder, spikes: np.ndarray, channel: int = 0) -> np.ndarray:
    """Reorder the raster's neurons of ``channel`` into slot order: (..., neurons_per_channel)."""
    return spikes[..., enc.neuron_index_[channel]]


# ------------------------------------------------------------------------------------- layout


@pytest.mark.parametrize("method", METHODS)
def test_layout_is_a_seeded_permutation(method):
    a = SpikeEncoder(method=method, neurons_per_channel=4, seed=3)
    b = SpikeEncoder(method=method, neurons_per_channel=4, seed=3)
    c = SpikeEncoder(method=method, neurons_per_channel=4, seed=4)
    x = np.linspace(-2, 2, 15).reshape(5, 3)
    state = {"state": a.init_state(5, 3)} if method == "delta" else {}
    out = a.encode(x, **state)
    assert out.shape == (5, a.substeps, a.n_input_neurons(3)) == (5, 10, 12)
    assert out.dtype == np.bool_
    assert a.neuron_index_.shape == (3, 4)
    assert sorted(a.neuron_index_.ravel().tolist()) == list(range(12))
    b.encode(x, **({"state": b.init_state(5, 3)} if method == "delta" else {}))
    c.encode(x, **({"state": c.init_state(5, 3)} if method == "delta" else {}))
    np.testing.assert_array_equal(a.neuron_index_, b.neuron_index_)
    assert not np.array_equal(a.neuron_index_, c.neuron_index_)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_identical_output_different_seed_differs(rng, method):
    x = rng.normal(size=(2, 20, 3)) * 2
    outs = []
    for seed in (11, 11, 12):
        enc = SpikeEncoder(method=method, seed=seed)
        state = enc.init_state(2, 3)
        outs.append(enc.encode_sequence(x, state=state))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


# --------------------------------------------------------------------------------------- rate


def test_rate_raster_equals_counter_uniforms_below_probability(rng):
    enc = SpikeEncoder(method="rate", substeps=7, neurons_per_channel=4, max_rate=0.8, seed=5)
    x = rng.normal(size=(9, 2)) * 2
    counters = rng.integers(0, 2**62, size=9, dtype=np.int64)
    spikes = enc.encode(x, counters=counters)
    u = counter_uniforms(5, counters, 7, enc.n_input_neurons(2))
    # probability per physical neuron, from the documented intensity
    p = np.zeros((9, 8))
    for c in range(2):
        for j in range(4):
            sign = 1.0 if j < 2 else -1.0
            p[:, enc.neuron_index_[c, j]] = 0.8 * np.clip(sign * x[:, c] * (1 / 3.0), 0.0, 1.0)
    np.testing.assert_array_equal(spikes, u < p[:, None, :])


@pytest.mark.parametrize("z", [0.15, 0.75, 1.5, 2.4, 3.0, 5.0])
def test_rate_mean_firing_rate_is_proportional_to_intensity(z):
    enc = SpikeEncoder(method="rate", substeps=50, neurons_per_channel=4, max_rate=0.6, seed=1)
    n_rows = 200
    for sign in (1.0, -1.0):
        x = np.full((n_rows, 1), sign * z)
        spikes = _slots(enc, enc.encode(x, counters=np.arange(n_rows) + int(1000 * z)))
        on, off = (
            (spikes[..., :2], spikes[..., 2:]) if sign > 0 else (spikes[..., 2:], spikes[..., :2])
        )
        assert not off.any()  # the other sign's neurons stay silent
        p = 0.6 * min(z / 3.0, 1.0)
        k, n = int(on.sum()), on.size
        ci = binomtest(k, n, p).proportion_ci(confidence_level=0.999, method="exact")
        assert ci.low <= p <= ci.high, (k, n, p)


def test_rate_draws_are_uniform_and_uncorrelated_between_bins():
    u = counter_uniforms(2, np.arange(400), 25, 16)
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    expected = u.size / 10
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 27.9  # chi-square(9) at p = 0.001
    a, b = u[:, :-1].ravel(), u[:, 1:].ravel()  # neighbouring bins
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(a.size)


@pytest.mark.parametrize("method", ["rate", "temporal", "delta"])
def test_zero_input_gives_no_spikes(method):
    enc = SpikeEncoder(method=method, substeps=20)
    state = enc.init_state(4, 3)
    out = enc.encode_sequence(np.zeros((4, 5, 3)), state=state)
    assert not out.any()


def test_rate_full_intensity_fires_every_bin():
    enc = SpikeEncoder(method="rate", substeps=30, neurons_per_channel=2, max_rate=1.0)
    spikes = _slots(enc, enc.encode(np.array([[3.0], [7.0]])))
    assert spikes[..., 0].all()
    assert not spikes[..., 1].any()


# ------------------------------------------------------------------------------- batch safety


@pytest.mark.parametrize("method", METHODS)
def test_batching_invariance(rng, method):
    """Rows encoded together equal each row alone (same counters, same per-source state)."""
    n, steps = 7, 6
    X = rng.normal(size=(n, steps, 2)) * 2
    counters = rng.integers(0, 2**40, size=(n, steps))
    enc = SpikeEncoder(method=method, substeps=8, seed=9)
    together = np.stack(
        [
            enc.encode(X[:, t], counters=counters[:, t], state=st)
            for st in [enc.init_state(n, 2)]
            for t in range(steps)
        ],
        axis=1,
    )
    for i in range(n):
        st = enc.init_state(1, 2)
        alone = [
            enc.encode(X[i : i + 1, t], counters=counters[i : i + 1, t], state=st)
            for t in range(steps)
        ]
        np.testing.assert_array_equal(np.stack(alone, axis=1)[0], together[i])
    # and one call over the whole sequence
    seq = enc.encode_sequence(X, counters=counters, state=enc.init_state(n, 2))
    np.testing.assert_array_equal(seq, together)


def test_delta_gather_scatter_over_random_subsets_equals_each_alone(rng):
    n, steps = 5, 30
    X = rng.normal(size=(n, steps, 1))
    enc = SpikeEncoder(method="delta", threshold=0.7, neurons_per_channel=2)
    ref = np.stack(
        [enc.encode_sequence(X[i : i + 1], state=enc.init_state(1, 1))[0] for i in range(n)]
    )
    store = enc.init_state(n, 1)
    pos = np.zeros(n, dtype=int)
    got = np.zeros_like(ref)
    while (pos < steps).any():
        ready = np.flatnonzero(pos < steps)
        rows = rng.permutation(ready)[: rng.integers(1, len(ready) + 1)]
        sub = store.take(rows)
        got[rows, pos[rows]] = enc.encode(X[rows, pos[rows]], state=sub)
        store.put(rows, sub)
        pos[rows] += 1
    np.testing.assert_array_equal(got, ref)


def test_default_counters_are_reproducible_for_a_fresh_encoder(rng):
    x = rng.normal(size=(3, 2))
    a, b = SpikeEncoder(seed=4), SpikeEncoder(seed=4)
    first = [a.encode(x), a.encode(x)]
    np.testing.assert_array_equal(first[0], b.encode(x))
    np.testing.assert_array_equal(first[1], b.encode(x))
    assert not np.array_equal(first[0], first[1])  # the call counter advances the draws
    assert a.n_calls_ == 2
    base = np.uint64(1) << np.uint64(32)  # call 1, rows 0..2
    explicit = SpikeEncoder(seed=4).encode(x, counters=np.arange(3, dtype=np.uint64) + base)
    np.testing.assert_array_equal(first[1], explicit)


# ----------------------------------------------------------------------------------- temporal


def test_latency_strictly_decreasing_and_raster_bins_non_increasing():
    substeps = 16
    enc = SpikeEncoder(method="temporal", substeps=substeps, neurons_per_channel=2, value_range=2.0)
    intensity = np.linspace(0.001, 1.0, 400)
    z = 2.0 * intensity
    lat = enc.latency(z)
    assert (np.diff(lat) < 0).all()
    np.testing.assert_allclose(lat, substeps * (1 - intensity))
    assert enc.latency(np.array([0.0]))[0] == np.inf
    for sign in (1.0, -1.0):
        spikes = _slots(enc, enc.encode(sign * z[:, None]))
        fire, silent = (
            (spikes[..., 0], spikes[..., 1]) if sign > 0 else (spikes[..., 1], spikes[..., 0])
        )
        assert not silent.any()
        assert (fire.sum(axis=1) == 1).all()  # exactly one spike per neuron per observation
        bins = fire.argmax(axis=1)
        assert (np.diff(bins) <= 0).all()
        np.testing.assert_array_equal(bins, np.minimum(np.floor(lat), substeps - 1))
    assert bins[-1] == 0
    assert bins[0] == substeps - 1


def _latency_raster_reference(enc: SpikeEncoder, x: np.ndarray) -> np.ndarray:
    """Brute-force temporal raster from the documented rule, neuron by neuron in slot order."""
    batch, n_channels = x.shape
    k = enc.neurons_per_channel
    out = np.zeros((batch, enc.substeps, n_channels * k), dtype=bool)
    for r in range(batch):
        for c in range(n_channels):
            for j in range(k):
                sign = 1.0 if j < k // 2 else -1.0
                s = min(max(x[r, c] * sign * (1.0 / enc.value_range), 0.0), 1.0)
                if s > 0.0:
                    b = min(int(np.floor(enc.substeps * (1.0 - s))), enc.substeps - 1)
                    out[r, b, enc.neuron_index_[c, j]] = True
    return out


@pytest.mark.parametrize("substeps", [1, 2, 7])
def test_temporal_raster_equals_brute_force_rule(rng, substeps):
    # substeps=1 has its own kernel path (spike iff the intensity is positive).
    enc = SpikeEncoder(method="temporal", substeps=substeps, neurons_per_channel=4, seed=3)
    x = rng.normal(size=(300, 3)) * 2.0
    x[::7, 1] = 0.0
    x[::11, 2] = 5.0  # saturated intensity
    x[::13, 0] = -1e-300  # tiny negative: positive intensity on the "off" neurons
    got = enc.encode(x)
    np.testing.assert_array_equal(got, _latency_raster_reference(enc, x))
    assert got.any()


# --------------------------------------------------------------------------------- population


def test_population_most_active_neuron_is_nearest_centre():
    k, substeps, vr = 9, 40, 3.0
    enc = SpikeEncoder(
        method="population", substeps=substeps, neurons_per_channel=k, value_range=vr
    )
    z = np.concatenate([np.linspace(-vr, vr, 301), [-10.0, 10.0]])[:, None]
    spikes = _slots(enc, enc.encode(z))
    np.testing.assert_allclose(enc.centres_, np.linspace(-vr, vr, k))
    nearest = np.abs(np.clip(z, -vr, vr) - enc.centres_).argmin(axis=1)
    act = enc.population_response(z)[:, 0]
    np.testing.assert_array_equal(act.argmax(axis=1), nearest)
    counts = spikes.sum(axis=1)
    np.testing.assert_array_equal(counts, np.floor(substeps * act + 0.5))  # round(S a) spikes
    assert (counts[np.arange(len(z)), nearest] == counts.max(axis=1)).all()
    width = 2 * vr / (k - 1)
    np.testing.assert_allclose(
        act, np.exp(-((np.clip(z, -vr, vr) - enc.centres_) ** 2) / (2 * width**2))
    )
    assert counts[-1, -1] == substeps  # saturates at the edges
    assert counts[-2, 0] == substeps


def test_population_spikes_are_evenly_spread():
    enc = SpikeEncoder(method="population", substeps=12, neurons_per_channel=3, field_width=1.0)
    a = enc.population_response(np.array([[0.7]]))[0, 0]
    spikes = _slots(enc, enc.encode(np.array([[0.7]])))[0]
    for j in range(3):
        cum = np.cumsum(spikes[:, j])
        np.testing.assert_array_equal(cum, np.floor((np.arange(12) + 1) * a[j] + 0.5))


# -------------------------------------------------------------------------------------- phase


def test_phase_is_proportional_to_value():
    substeps, vr = 20, 2.5
    enc = SpikeEncoder(method="phase", substeps=substeps, neurons_per_channel=3, value_range=vr)
    k = np.arange(substeps)
    z = vr * (2 * (k + 0.5) / substeps - 1)  # values whose phase is a bin centre
    spikes = _slots(enc, enc.encode(z[:, None]))
    assert (spikes.sum(axis=1) == 1).all()  # one spike per neuron per observation
    assert (spikes == spikes[..., :1]).all()  # the channel's neurons fire together
    bins = spikes[..., 0].argmax(axis=1)
    decoded = 2 * np.pi * (bins + 0.5) / substeps
    slope, intercept = np.polyfit(z, decoded, 1)
    np.testing.assert_allclose(slope, np.pi / vr, rtol=1e-12)
    np.testing.assert_allclose(intercept, np.pi, rtol=1e-12)
    np.testing.assert_allclose(enc.phase(z), decoded, rtol=1e-12)
    # arbitrary values decode within half a bin of the continuous phase
    zz = np.linspace(-vr, vr, 999)
    b = _slots(enc, enc.encode(zz[:, None]))[..., 0].argmax(axis=1)
    assert (
        np.abs(2 * np.pi * (b + 0.5) / substeps - enc.phase(zz)) <= np.pi / substeps + 1e-12
    ).all()


# -------------------------------------------------------------------------------------- delta


def test_delta_spikes_iff_change_crosses_threshold_on_its_sign():
    thr = 0.5
    enc = SpikeEncoder(method="delta", substeps=5, neurons_per_channel=4, threshold=thr)
    up, down = np.nextafter(thr, 1.0), np.nextafter(thr, 0.0)
    changes = np.array([-2.0, -up, -thr, -down, -0.1, 0.0, 0.1, down, thr, up, 2.0])
    n = len(changes)
    state = enc.init_state(n, 1)
    first = enc.encode(np.zeros((n, 1)), state=state)
    assert not first.any()  # the first observation only sets the reference
    spikes = _slots(enc, enc.encode(changes[:, None], state=state))
    assert not spikes[:, 1:].any()  # bin 0 only
    on, off = spikes[:, 0, :2], spikes[:, 0, 2:]
    assert (on == (changes > thr)[:, None]).all()
    assert (off == (changes < -thr)[:, None]).all()
    assert on.any(axis=1).tolist() == [False] * 9 + [True, True]
    assert off.any(axis=1).tolist() == [True, True] + [False] * 9
    np.testing.assert_array_equal(state.previous[:, 0], changes)  # reference replaced


def test_delta_reference_follows_every_observation():
    enc = SpikeEncoder(method="delta", neurons_per_channel=2, threshold=0.5)
    ramp = np.arange(20.0)[None, :, None] * 0.4  # slow drift: 0.4 per step never fires
    assert not enc.encode_sequence(ramp, state=enc.init_state(1, 1)).any()
    jumps = np.array([0.0, 0.6, 0.6, -0.2, 0.5])[None, :, None]
    spikes = _slots(enc, enc.encode_sequence(jumps, state=enc.init_state(1, 1)))[0, :, 0]
    assert spikes.tolist() == [
        [False, False],
        [True, False],
        [False, False],
        [False, True],
        [True, False],
    ]


def test_delta_requires_state():
    with pytest.raises(InvalidInputError, match="needs the per-source state"):
        SpikeEncoder(method="delta").encode(np.zeros((2, 1)))


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_rejected_and_state_untouched(rng, method, bad):
    enc = SpikeEncoder(method=method)
    state = enc.init_state(4, 3)
    enc.encode(rng.normal(size=(4, 3)), state=state)
    before = {k: v.copy() for k, v in state.arrays().items()}
    calls = enc.n_calls_
    x = rng.normal(size=(4, 3))
    x[2, 1] = bad
    x[3, 0] = bad
    with pytest.raises(
        InvalidInputError, match=r"2 non-finite value\(s\).*first at index \(2, 1\)"
    ):
        enc.encode(x, state=state)
    X = rng.normal(size=(4, 3, 3))
    X[1, 2, 0] = bad
    with pytest.raises(InvalidInputError, match=r"1 non-finite.*\(1, 2, 0\)"):
        enc.encode_sequence(X, state=state)
    for k, v in state.arrays().items():
        np.testing.assert_array_equal(v, before[k])
    assert enc.n_calls_ == calls


def test_shape_errors_name_the_shapes():
    enc = SpikeEncoder(method="delta")
    state = enc.init_state(3, 2)
    with pytest.raises(InvalidInputError, match=r"2 dimensions, got shape \(6,\)"):
        enc.encode(np.zeros(6), state=state)
    with pytest.raises(InvalidInputError, match=r"\(3, 2\).*4 row\(s\) of 2 channel"):
        enc.encode(np.zeros((4, 2)), state=state)
    enc.encode(np.zeros((3, 2)), state=state)
    with pytest.raises(InvalidInputError, match=r"3 channel\(s\) but .* first used with 2"):
        enc.encode(np.zeros((3, 3)), state=enc.init_state(3, 3))
    rate = SpikeEncoder()
    with pytest.raises(
        InvalidInputError, match=r"counters must have shape \(3,\), got shape \(2,\)"
    ):
        rate.encode(np.zeros((3, 1)), counters=[1, 2])
    with pytest.raises(InvalidInputError, match="counters must be integers"):
        rate.encode(np.zeros((3, 1)), counters=[1.0, 2.0, 3.0])
    with pytest.raises(InvalidInputError, match="non-negative"):
        rate.encode(np.zeros((3, 1)), counters=[1, -2, 3])
    with pytest.raises(InvalidInputError, match="EncoderState"):
        rate.encode(np.zeros((3, 1)), state={"previous": np.zeros((3, 1))})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "poisson"}, r"The 'method' parameter of SpikeEncoder must be one of 'rate'"),
        ({"substeps": 0}, r"'substeps' parameter of SpikeEncoder must be an int in \[1, "),
        ({"max_rate": 0.0}, r"'max_rate' .* \(0, 1\]. Got 0.0 instead"),
        ({"value_range": -1.0}, r"'value_range'"),
        ({"neurons_per_channel": 3}, r"even int >= 2 for method='rate' .*Got 3 instead"),
        ({"method": "delta", "neurons_per_channel": 1}, r"even int >= 2 for method='delta'"),
        ({"seed": -1}, r"'seed'"),
    ],
)
def test_invalid_parameters(kwargs, message):
    enc = SpikeEncoder(**kwargs)
    with pytest.raises(InvalidParameterError, match=message):
        enc.encode(np.zeros((1, 1)))


def test_odd_population_and_phase_sizes_are_allowed():
    for method in ("population", "phase"):
        out = SpikeEncoder(method=method, neurons_per_channel=1).encode(np.zeros((2, 3)))
        assert out.shape == (2, 10, 3)


def test_encoder_state_is_a_batch_state():
    enc = SpikeEncoder(method="delta")
    st = enc.init_state(3, 2)
    assert isinstance(st, EncoderState)
    assert len(st) == 3
    assert st.previous.dtype == np.float64
    assert st.seen.dtype == np.bool_


@pytest.mark.parametrize("method", METHODS)
def test_empty_batches_and_sequences(method):
    enc = SpikeEncoder(method=method, neurons_per_channel=2)
    assert enc.encode(np.zeros((0, 2)), state=enc.init_state(0, 2)).shape == (0, 10, 4)
    state = enc.init_state(3, 2)
    out = enc.encode_sequence(np.zeros((3, 0, 2)), counters=np.zeros((3, 0), int), state=state)
    assert out.shape == (3, 0, 10, 4)
    assert not state.seen.any()
