"""Burst detector on spike times: ``burst`` (raster) and ``burst_events`` (event lists)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, check_finite_array, validate_params
from nqp.exceptions import InvalidInputError
from nqp.neuromorphic._patterns._common import Strength, as_raster, unbatch
from nqp.neuromorphic._patterns._kernels import burst_strengths

__all__ = ["burst", "burst_events", "poisson_burst_fraction"]

_CONSTRAINTS = {
    "min_spikes": [Interval("int", 2, None)],
    "isi_ratio": [Interval("real", 0, None, "neither")],
}


def poisson_burst_fraction(min_spikes: int, isi_ratio: float) -> float:
    r"""Expected fraction of spikes in bursts for a Poisson train (the chance level).

    With exponential ISIs the probability that an ISI is shorter than
    ``isi_ratio`` × mean ISI is :math:`q = 1 - e^{-\text{isi\_ratio}}`. Runs of spikes
    joined by short ISIs then have geometric length :math:`P(L = l) = q^{l-1}(1 - q)`,
    and the fraction of spikes in runs of at least :math:`k` spikes is

    .. math:: F_0 = \frac{\sum_{l \ge k} l\, q^{l-1}(1-q)}{\mathbb{E}[L]}
                 = q^{k-1}\big(k - (k-1)q\big).

    Examples
    --------
    >>> round(poisson_burst_fraction(3, 0.25), 4)
    0.1251
    """
    validate_params(
        "poisson_burst_fraction",
        {"min_spikes": min_spikes, "isi_ratio": isi_ratio},
        _CONSTRAINTS,
    )
    q = -math.expm1(-isi_ratio)
    return q ** (min_spikes - 1) * (min_spikes - (min_spikes - 1) * q)


def _burst_strength(
    times: NDArray[np.float64],
    ids: NDArray[np.int64],
    groups: NDArray[np.int64],
    n_groups: int,
    min_spikes: int,
    isi_ratio: float,
) -> NDArray[np.float64]:
    """Burst strength per group from events; ``ids`` identify trains, ``groups`` batches."""
    out = np.zeros(n_groups)
    if times.size == 0:
        return out
    order = np.lexsort((times, ids))  # by train, then by time: sorted before detection
    t, tr, grp = times[order], ids[order], groups[order]
    # Per-train first/last index and spike count.
    starts = np.flatnonzero(np.r_[True, tr[1:] != tr[:-1]])
    ends = np.r_[starts[1:], t.size]
    counts = ends - starts
    long_enough = counts >= min_spikes
    span = t[ends - 1] - t[starts]
    mean_isi = np.where(counts > 1, span / np.maximum(counts - 1, 1), 0.0)
    # Short ISIs: within the same train and <= isi_ratio * that train's mean ISI.
    train_of = np.repeat(np.arange(starts.size), counts)
    same = tr[1:] == tr[:-1]
    isi = np.diff(t)
    short = same & (isi <= isi_ratio * mean_isi[train_of[1:]]) & long_enough[train_of[1:]]
    # Runs of consecutive short ISIs: a run of r short ISIs joins r + 1 spikes.
    padded = np.r_[False, short, False].astype(np.int8)
    edges = np.diff(padded)
    run_start = np.flatnonzero(edges == 1)
    run_end = np.flatnonzero(edges == -1)  # exclusive, in ISI index
    run_spikes = run_end - run_start + 1
    in_burst = run_spikes >= min_spikes
    burst_spikes = np.zeros(n_groups)
    np.add.at(burst_spikes, grp[run_start[in_burst]], run_spikes[in_burst])
    eligible = np.zeros(n_groups)
    np.add.at(eligible, grp[starts[long_enough]], counts[long_enough])
    f0 = poisson_burst_fraction(min_spikes, isi_ratio)
    ok = eligible > 0
    frac = np.where(ok, burst_spikes / np.where(ok, eligible, 1.0), 0.0)
    out = np.where(ok, (frac - f0) / (1.0 - f0), 0.0)
    return np.clip(out, 0.0, 1.0)


def burst_events(
    times: ArrayLike,
    neuron_ids: ArrayLike,
    *,
    min_spikes: int = 3,
    isi_ratio: float = 0.25,
) -> float:
    r"""Excess fraction of spikes in bursts, from an event list in any order.

    Events are first sorted by neuron and then by time (``numpy.lexsort``), so the
    answer does not depend on the order the events are given in. For each neuron with
    at least ``min_spikes`` spikes, an inter-spike interval is *short* when it is at most
    ``isi_ratio`` times that neuron's mean ISI (:math:`(t_{last} - t_{first})/(n - 1)`);
    a burst is a run of at least ``min_spikes`` spikes joined by short ISIs (an ISI
    threshold criterion, cf. Selinger et al. 2007; the reference is the *mean* ISI, not
    the median, so that a neuron firing mostly in bursts keeps a long reference). With :math:`F` the
    fraction of those neurons' spikes that fall in bursts and :math:`F_0` its Poisson
    chance level (:func:`poisson_burst_fraction`, 0.125 at the defaults),

    .. math:: \text{strength} = \operatorname{clip}\big((F - F_0)/(1 - F_0), 0, 1\big).

    Planted bursts give :math:`F \approx 1`; Poisson spiking at the same mean rate gives
    :math:`F \approx F_0` (strength near 0) and regular spiking :math:`F = 0`.

    Parameters
    ----------
    times : array-like of shape (n_spikes,)
        Spike times (any unit, any order); equal times in one neuron give ISI 0.
    neuron_ids : array-like of int of shape (n_spikes,)
        Neuron of each spike.
    min_spikes : int, default=3
        Spikes per burst, at least 2.
    isi_ratio : float, default=0.25
        Short-ISI threshold relative to the neuron's mean ISI.

    Returns
    -------
    float
        0 when no neuron has ``min_spikes`` spikes.

    References
    ----------
    J. V. Selinger, N. V. Kulagina, T. J. O'Shaughnessy, W. Ma, J. J. Pancrazio,
    "Methods for characterizing interspike intervals and identifying bursts in neuronal
    activity", J. Neurosci. Methods 162:64-71 (2007).

    Examples
    --------
    >>> t = np.concatenate([np.arange(4) + 40.0 * k for k in range(10)])
    >>> burst_events(t, np.zeros(t.size, int))
    1.0
    >>> burst_events(t[::-1], np.zeros(t.size, int))
    1.0
    """
    validate_params(
        "burst_events", {"min_spikes": min_spikes, "isi_ratio": isi_ratio}, _CONSTRAINTS
    )
    t = check_finite_array(times, name="times", ndim=1)
    raw_ids = np.asarray(neuron_ids)
    if raw_ids.ndim != 1 or raw_ids.shape != t.shape:
        raise InvalidInputError(
            f"neuron_ids must have the shape of times {t.shape}, got {raw_ids.shape}."
        )
    if raw_ids.size and not np.issubdtype(raw_ids.dtype, np.integer):
        raise InvalidInputError(f"neuron_ids must be integers, got dtype {raw_ids.dtype}.")
    ids = raw_ids.astype(np.int64)
    groups = np.zeros(t.size, dtype=np.int64)
    return float(_burst_strength(t, ids, groups, 1, min_spikes, isi_ratio)[0])


def burst(raster: ArrayLike, *, min_spikes: int = 3, isi_ratio: float = 0.25) -> Strength:
    r"""Excess fraction of spikes in bursts, from a raster.

    Spike times are the bin indices (a bin with count :math:`c > 1` gives :math:`c`
    spikes at the same time, ISI 0); see :func:`burst_events` for the definition.

    Parameters
    ----------
    raster : array-like of shape (n_bins, n_neurons) or (batch, n_bins, n_neurons)
    min_spikes : int, default=3
    isi_ratio : float, default=0.25

    Returns
    -------
    float, or ndarray of shape (batch,) float64

    Examples
    --------
    >>> r = np.zeros((400, 2), dtype=bool)
    >>> r[(np.arange(40, 400, 40)[:, None] + np.arange(4)).ravel(), 0] = True
    >>> r[::10, 1] = True                       # regular spiking
    >>> burst(r[:, :1]), burst(r[:, 1:])
    (1.0, 0.0)
    """
    validate_params("burst", {"min_spikes": min_spikes, "isi_ratio": isi_ratio}, _CONSTRAINTS)
    r3, batched = as_raster(raster)
    return unbatch(_burst(r3, min_spikes, isi_ratio), batched)


def _burst(r3: NDArray[np.float64], min_spikes: int, isi_ratio: float) -> NDArray[np.float64]:
    """:func:`burst` of a checked raster of shape (batch, n_bins, n_neurons)."""
    if r3.shape[1] == 0 or r3.shape[2] == 0:
        return np.zeros(r3.shape[0])
    f0 = poisson_burst_fraction(min_spikes, isi_ratio)
    out = burst_strengths(np.ascontiguousarray(r3), min_spikes, float(isi_ratio), f0)
    return np.clip(out, 0.0, 1.0)
