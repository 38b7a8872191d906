"""The batched per-point step: observations of many sources in, prediction arrays out.

:class:`Pipeline` owns the engine components (normaliser, spike encoder, spiking reservoir,
pattern detector, quantum reservoir, online readout, calibrator) and steps a *wave* — one
new point for each of ``B`` distinct sources — as array operations:

1. the point completes the horizon of the prediction made ``h`` points earlier: that
   prediction's features and the realised change train the readout (RLS) and its raw
   probability and the realised direction train the calibrator; the realised change's
   surprise under that prediction feeds the anomaly score;
2. the point is normalised, spike-encoded and fed to the spiking reservoir bin by bin;
   the reservoir's spikes enter a sliding window scanned for patterns every
   ``pattern_interval`` points (strengths are carried between scans; ``emergent`` is
   scored every point on the projected trace);
3. the quantum reservoir takes the target channel's normalised change;
4. features ``[P_n·trace, P_q·quantum features, pattern strengths, z, 1]`` give the
   readout's predictive distribution ``N(ŷ, σ²)`` of the normalised change over the
   horizon, hence ``P(up) = Φ(ŷ/σ)``, recalibrated per source against realised outcomes.

All per-source state lives in :class:`~nqp._state.BatchState` arrays held by a
:class:`~nqp.engine.store.SourceStore`; the pipeline works on gathered copies and the
caller scatters them back only after the whole wave succeeded.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from nqp._state import BatchState
from nqp.calibration import OnlineCalibrator
from nqp.config import Settings
from nqp.neuromorphic.encoding import SpikeEncoder
from nqp.neuromorphic.normalization import OnlineNormalizer
from nqp.neuromorphic.patterns import KINDS, EmergentState, PatternDetector, emergent
from nqp.neuromorphic.reservoir import EchoStateReservoir, LIFReservoir
from nqp.quantum.reservoir import QuantumReservoir
from nqp.readout import RLSReadout

__all__ = ["MetaState", "PendingState", "Pipeline", "WaveResult", "WindowState"]

_GAPS = 16  # inter-arrival times kept per source for the median
_HIT_ALPHA = 0.05  # EW rate of the rolling hit rate
_SCAN_KINDS = tuple(k for k in KINDS if k != "emergent")


@dataclasses.dataclass
class MetaState(BatchState):
    """Per-source bookkeeping (one row per source).

    Attributes
    ----------
    key : (n,) uint64
        Hash of the source name; seeds the source's spike draws.
    seq : (n,) int64
        Points seen.
    n_channels, horizon, target : (n,) int32
        Fixed by the first point (0 = unset).
    last_ts : (n,) float64
        Timestamp of the last point, seconds (NaN before the first).
    gaps : (n, 16) float64
        Last inter-arrival times in seconds (NaN = empty slot).
    n_outcomes : (n,) int64
        Realised outcomes the readout has learnt from.
    hits, scored : (n,) int64
        Directional hits among scored (non-hold, post-warm-up, non-zero) outcomes.
    hit_rate_ew : (n,) float64
        Exponentially weighted hit rate (NaN until the first scored outcome).
    patterns : (n, 7) float64
        Strengths of the scanned kinds at the last scan.
    """

    key: NDArray[np.uint64]
    seq: NDArray[np.int64]
    n_channels: NDArray[np.int32]
    horizon: NDArray[np.int32]
    target: NDArray[np.int32]
    last_ts: NDArray[np.float64]
    gaps: NDArray[np.float64]
    n_outcomes: NDArray[np.int64]
    hits: NDArray[np.int64]
    scored: NDArray[np.int64]
    hit_rate_ew: NDArray[np.float64]
    patterns: NDArray[np.float64]


@dataclasses.dataclass
class PendingState(BatchState):
    """Predictions awaiting their outcome, in a ring of ``max_horizon`` slots per source.

    Attributes
    ----------
    feats : (n, H, d) float64
        Readout features of each pending prediction.
    mean, scale, p_raw : (n, H) float64
        Predictive mean and scale (normalised units) and raw P(up).
    direction : (n, H) int8
        Stated direction (+1 up, -1 down, 0 hold or warming up).
    returns : (n, H) float64
        The target's normalised one-step changes of the last ``H`` points.
    """

    feats: NDArray[np.float64]
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    p_raw: NDArray[np.float64]
    direction: NDArray[np.int8]
    returns: NDArray[np.float64]


@dataclasses.dataclass
class WindowState(BatchState):
    """Sliding window of the sampled reservoir neurons' spikes (a ring of bins).

    Attributes
    ----------
    raster : (n, window * substeps, pattern_neurons) bool
    """

    raster: NDArray[np.bool_]


@dataclasses.dataclass(frozen=True)
class WaveResult:
    """Outputs of one wave, row for row (all arrays of leading shape (batch,))."""

    seq: NDArray[np.int64]
    timestamp: NDArray[np.float64]
    direction: NDArray[np.int8]
    confidence: NDArray[np.float64]
    magnitude: NDArray[np.float64]
    expected_change: NDArray[np.float64]  # signed, target units
    uncertainty: NDArray[np.float64]  # predictive std, target units
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    horizon: NDArray[np.int32]
    time_horizon_ms: NDArray[np.float64]
    warming_up: NDArray[np.bool_]
    anomaly: NDArray[np.float64]
    patterns: NDArray[np.float64]  # (batch, 8) in KINDS order
    spike_count: NDArray[np.int64]
    spike_rate_hz: NDArray[np.float64]
    trace_stats: NDArray[np.float64]  # (batch, 4): mean, std, max, active fraction
    q_energy: NDArray[np.float64]
    q_coherence: NDArray[np.float64]
    q_converged: NDArray[np.bool_]
    q_iterations: NDArray[np.int64]
    q_residual: NDArray[np.float64]
    outcome_ready: NDArray[np.bool_]
    outcome: NDArray[np.float64]  # realised normalised change of the completed horizon


def _rows_of(state: Any, rows: NDArray[np.intp], batch: int) -> Any:
    """The gathered state itself when every row takes part (the common case), else a copy."""
    return state if rows.size == batch else state.take(rows)


def _write_back(state: Any, rows: NDArray[np.intp], batch: int, sub: Any) -> None:
    if sub is not state:
        state.put(rows, sub)


def _median_of_finite(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row medians ignoring NaN; 0 for rows without any finite value. ``(B, k) -> (B,)``."""
    srt = np.sort(values, axis=1)  # NaN sorts last
    n = np.isfinite(values).sum(axis=1)
    rows = np.arange(values.shape[0])
    lo = srt[rows, np.maximum((n - 1) // 2, 0)]
    hi = srt[rows, np.minimum(n // 2, values.shape[1] - 1)]
    return np.where(n > 0, 0.5 * (lo + hi), 0.0)


def _surprise(u: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map a standardised error to [0, 1]: ``-log10(two-sided p) / 6`` clipped.

    |u| = 0.67 (median of |N(0,1)|) → 0.05; 1.96 → 0.22; 4 → 0.70; ≥ 5.3 → 1.
    """
    p = 2.0 * ndtr(-np.abs(u))
    return np.clip(-np.log10(np.maximum(p, 1e-300)) / 6.0, 0.0, 1.0)


class Pipeline:
    """The engine's components and the batched step over a wave of sources.

    Parameters
    ----------
    settings : Settings
        Engine, neuromorphic and quantum settings; ``settings.seed`` seeds every random
        structure (reservoir weights, encoder layout, projections, quantum disorder).
    """

    #: Components :meth:`step` can take whole, with the wave's rows (``state_rows``), instead of
    #: as gathered copies: most of a source's state (the readout's learners, 75 kB, and the
    #: quantum density matrices, 32 kB), stepped where it is.
    by_row_index: ClassVar[frozenset[str]] = frozenset({"readout", "quantum"})

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        neuro, quantum, eng = settings.neuromorphic, settings.quantum, settings.engine
        seeds = [
            int(s.generate_state(1)[0]) for s in np.random.SeedSequence(settings.seed).spawn(6)
        ]
        self.max_horizon = eng.max_horizon
        self.n_channels = eng.max_channels
        self.encoder = SpikeEncoder(
            method=neuro.encoding,
            substeps=neuro.substeps,
            neurons_per_channel=neuro.neurons_per_channel,
            seed=seeds[0],
        )
        n_in = self.encoder.n_input_neurons(self.n_channels)
        self.n_neurons = neuro.n_neurons
        self.reservoir: LIFReservoir | EchoStateReservoir
        if neuro.reservoir == "lif":
            self.reservoir = LIFReservoir(
                neuro.n_neurons,
                n_in,
                connectivity=neuro.connectivity,
                spectral_radius=neuro.spectral_radius,
                seed=seeds[1],
            )
        else:
            self.reservoir = EchoStateReservoir(
                neuro.n_neurons,
                n_in,
                connectivity=neuro.connectivity,
                spectral_radius=neuro.spectral_radius,
                leak=neuro.leak,
                seed=seeds[1],
            )
        self.normalizer = OnlineNormalizer(mode=neuro.normalization)
        self.target_normalizer = OnlineNormalizer(mode="returns")
        self.detector = PatternDetector(kinds=_SCAN_KINDS)
        self.quantum = QuantumReservoir(
            quantum.qubit_count,
            evolution_time=quantum.evolution_time,
            virtual_nodes=quantum.virtual_nodes,
            energy_tolerance=quantum.energy_tolerance,
            seed=seeds[2],
        )
        rng = np.random.default_rng(seeds[3])
        dn = neuro.readout_dim or neuro.n_neurons
        self.proj_neuro = (
            rng.standard_normal((neuro.n_neurons, dn)) / np.sqrt(dn)
            if neuro.readout_dim
            else np.eye(neuro.n_neurons)
        )
        nq = self.quantum.n_features
        dq = quantum.readout_dim or nq
        self.proj_quantum = (
            rng.standard_normal((nq, dq)) / np.sqrt(dq) if quantum.readout_dim else np.eye(nq)
        )
        self.pattern_neurons = np.sort(
            rng.choice(
                neuro.n_neurons, size=min(neuro.pattern_neurons, neuro.n_neurons), replace=False
            )
        )
        self.window_bins = neuro.pattern_window * neuro.substeps
        self.n_features = dn + dq + len(KINDS) + self.n_channels + 1
        self.readout = RLSReadout(self.n_features, forgetting=eng.forgetting, delta=eng.ridge)
        self.calibrator = OnlineCalibrator()
        self.substeps = neuro.substeps
        self.dt_ms = float(getattr(self.reservoir, "dt", 1.0))

    # ------------------------------------------------------------------ state
    def factories(self) -> dict[str, Any]:
        """Fresh-state factories of every per-source component, for the SourceStore."""
        C, H, d = self.n_channels, self.max_horizon, self.n_features

        def meta(n: int) -> MetaState:
            return MetaState(
                key=np.zeros(n, np.uint64),
                seq=np.zeros(n, np.int64),
                n_channels=np.zeros(n, np.int32),
                horizon=np.zeros(n, np.int32),
                target=np.zeros(n, np.int32),
                last_ts=np.full(n, np.nan),
                gaps=np.full((n, _GAPS), np.nan),
                n_outcomes=np.zeros(n, np.int64),
                hits=np.zeros(n, np.int64),
                scored=np.zeros(n, np.int64),
                hit_rate_ew=np.full(n, np.nan),
                patterns=np.zeros((n, len(_SCAN_KINDS))),
            )

        def pending(n: int) -> PendingState:
            return PendingState(
                feats=np.zeros((n, H, d)),
                mean=np.zeros((n, H)),
                scale=np.ones((n, H)),
                p_raw=np.full((n, H), 0.5),
                direction=np.zeros((n, H), np.int8),
                returns=np.zeros((n, H)),
            )

        def window(n: int) -> WindowState:
            return WindowState(
                raster=np.zeros((n, self.window_bins, len(self.pattern_neurons)), dtype=bool)
            )

        dn = self.proj_neuro.shape[1]
        return {
            "meta": meta,
            "norm": lambda n: self.normalizer.init_state(n, C),
            "target": lambda n: self.target_normalizer.init_state(n, 1),
            "encoder": lambda n: self.encoder.init_state(n, C),
            "reservoir": self.reservoir.init_state,
            "window": window,
            "emergent": lambda n: EmergentState.zeros(n, dn),
            "quantum": self.quantum.init_state,
            "readout": self.readout.init_state,
            "calibrator": self.calibrator.init_state,
            "pending": pending,
        }

    # ------------------------------------------------------------------ step
    def step(
        self,
        st: dict[str, Any],
        x: NDArray[np.float64],
        timestamp: NDArray[np.float64],
        neuro_on: NDArray[np.bool_],
        quantum_on: NDArray[np.bool_],
        state_rows: NDArray[np.intp] | None = None,
    ) -> WaveResult:
        """Advance ``B`` sources by one point each, in place on the gathered states ``st``.

        Parameters
        ----------
        st : dict of str to BatchState
            Gathered rows (``SourceStore.states[name].take(rows)``: copies, or views for a
            slice of rows) of every component;
            modified in place. Meta fields ``key``, ``n_channels``, ``horizon`` and
            ``target`` must already be set for new sources.
        x : ndarray of shape (B, max_channels), float64
            The new observation per source, zero-padded beyond its channels (validated).
        timestamp : ndarray of shape (B,), float64
            Seconds since the epoch.
        neuro_on, quantum_on : ndarray of shape (B,), bool
            Which engines run for each source.
        state_rows : ndarray of shape (B,), int, optional
            If given, ``st[name]`` for each ``name`` in :attr:`by_row_index` is the store's
            whole state of that component and these are the wave's (distinct) rows in it:
            those components are stepped where they are instead of being gathered and
            scattered back.
        """
        eng = self.settings.engine
        meta: MetaState = st["meta"]
        pend: PendingState = st["pending"]
        B = x.shape[0]
        ar = np.arange(B)
        H = self.max_horizon
        meta.seq += 1
        seq = meta.seq.copy()
        h = meta.horizon.astype(np.int64)

        # time bookkeeping
        gap = timestamp - meta.last_ts
        new_gap = np.isfinite(gap) & (gap > 0)
        if new_gap.any():
            meta.gaps[new_gap] = np.roll(meta.gaps[new_gap], 1, axis=1)
            meta.gaps[new_gap, 0] = gap[new_gap]
        meta.last_ts = np.where(np.isfinite(timestamp), timestamp, meta.last_ts)

        # normalisation: features (all channels) and the target's one-step change
        z = self.normalizer.update_transform(st["norm"], x)
        z[np.arange(self.n_channels)[None, :] >= meta.n_channels[:, None]] = 0.0
        # the target's one-step change in units of its running RMS change (not centred,
        # so a steady trend keeps its sign and size)
        target_raw = x[ar, meta.target]
        tst = st["target"]
        had_prev = tst.count[:, 0] > 0
        change = np.where(had_prev, target_raw - tst.last[:, 0], 0.0)
        self.target_normalizer.update_transform(tst, target_raw[:, None])
        rms = np.sqrt(tst.mean[:, 0] ** 2 + np.maximum(tst.var[:, 0], 0.0))
        r = np.divide(change, rms, out=np.zeros(B), where=rms > 0)
        slot_now = (seq - 1) % H
        pend.returns[ar, slot_now] = r

        # 1. outcome of the prediction made h points ago
        ready = seq > h
        learn: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        outcome = np.zeros(B)
        anomaly_pred = np.zeros(B)
        if ready.any():
            rows = ar[ready]
            hh = h[ready]
            steps = np.arange(H)[None, :]
            back = (seq[ready, None] - 1 - steps) % H  # slots of the last H returns
            mask = steps < hh[:, None]
            y = np.sum(np.where(mask, pend.returns[rows[:, None], back], 0.0), axis=1)
            outcome[rows] = y
            slot = (seq[ready] - 1 - hh) % H
            feats = pend.feats[rows, slot]
            mean_p = pend.mean[rows, slot]
            scale_p = pend.scale[rows, slot]
            praw_p = pend.p_raw[rows, slot]
            dir_p = pend.direction[rows, slot]
            anomaly_pred[rows] = _surprise((y - mean_p) / scale_p)
            if rows.size == B:  # every source learns: fused with the prediction (step 4)
                learn = (feats, y)
            elif state_rows is not None:
                self.readout.learn(st["readout"], feats, y, rows=state_rows[rows])
            else:
                readout_st = _rows_of(st["readout"], rows, B)
                self.readout.learn(readout_st, feats, y)
                _write_back(st["readout"], rows, B, readout_st)
            moved = y != 0.0
            if moved.any():
                cal_rows = rows[moved]
                cal_st = _rows_of(st["calibrator"], cal_rows, B)
                self.calibrator.learn(cal_st, praw_p[moved], (y[moved] > 0).astype(np.float64))
                _write_back(st["calibrator"], cal_rows, B, cal_st)
            scored = moved & (dir_p != 0)
            if scored.any():
                srows = rows[scored]
                hit = (np.sign(y[scored]) == dir_p[scored]).astype(np.float64)
                meta.hits[srows] += hit.astype(np.int64)
                meta.scored[srows] += 1
                prev = meta.hit_rate_ew[srows]
                meta.hit_rate_ew[srows] = np.where(
                    np.isnan(prev), hit, (1 - _HIT_ALPHA) * prev + _HIT_ALPHA * hit
                )
            meta.n_outcomes[rows] += 1

        # 2. neuromorphic engine
        trace = np.zeros((B, self.n_neurons), dtype=np.float32)
        spikes_out = np.zeros((B, self.substeps, self.n_neurons), dtype=bool)
        patterns = np.zeros((B, len(KINDS)))
        emergent_strength = np.zeros(B)
        projected = np.zeros((B, self.proj_neuro.shape[1]))  # the trace's readout features
        nrows = ar[neuro_on]
        if nrows.size:
            counters = meta.key[nrows] + seq[nrows].astype(np.uint64)
            enc_st = _rows_of(st["encoder"], nrows, B)
            spikes_in = self.encoder.encode(z[nrows], counters=counters, state=enc_st)
            _write_back(st["encoder"], nrows, B, enc_st)
            res_st = _rows_of(st["reservoir"], nrows, B)
            if isinstance(self.reservoir, LIFReservoir):
                if nrows.size == B:  # the reservoir records into spikes_out itself
                    trace[...] = self.reservoir.step(res_st, spikes_in, raster_out=spikes_out)
                else:
                    fired = np.zeros((nrows.size, self.substeps, self.n_neurons), dtype=bool)
                    trace[nrows] = self.reservoir.step(res_st, spikes_in, raster_out=fired)
                    spikes_out[nrows] = fired
            else:
                trace[nrows] = self.reservoir.step(res_st, spikes_in.astype(np.float32))
            _write_back(st["reservoir"], nrows, B, res_st)
            # sliding window of sampled neurons (ring of bins)
            win = st["window"].raster
            start = ((seq[nrows] - 1) * self.substeps) % self.window_bins
            cols = (start[:, None] + np.arange(self.substeps)[None, :]) % self.window_bins
            fired_rows = spikes_out if nrows.size == B else spikes_out[nrows]
            win[nrows[:, None], cols] = np.take(fired_rows, self.pattern_neurons, axis=2)
            # each source scans every pattern_interval points, at a phase set by its key, so
            # sources that advance in step do not all scan at once (an engine-time spike)
            interval = self.settings.neuromorphic.pattern_interval
            phase = (meta.key[nrows] % np.uint64(interval)).astype(np.int64)
            scan = nrows[(seq[nrows] + phase) % interval == 0]
            if scan.size:
                first = ((seq[scan]) * self.substeps) % self.window_bins  # oldest bin
                order = (first[:, None] + np.arange(self.window_bins)[None, :]) % self.window_bins
                ordered = win[scan[:, None], order]
                report = self.detector.detect(ordered)
                meta.patterns[scan] = report.to_array()
            projected[nrows] = trace[nrows].astype(np.float64) @ self.proj_neuro
            em_st = _rows_of(st["emergent"], nrows, B)
            emergent_strength[nrows] = emergent(projected[nrows], em_st)
            _write_back(st["emergent"], nrows, B, em_st)
            scanned = meta.patterns[nrows]
            patterns[nrows] = np.insert(
                scanned, KINDS.index("emergent"), emergent_strength[nrows], axis=1
            )

        # 3. quantum engine
        q_feat = np.zeros((B, self.quantum.n_features))
        q_energy = np.zeros(B)
        q_coh = np.zeros(B)
        q_conv = np.zeros(B, dtype=bool)
        q_iter = np.zeros(B, dtype=np.int64)
        q_res = np.zeros(B)
        qrows = ar[quantum_on]
        if qrows.size:
            u = z[qrows, meta.target[qrows]][:, None]
            if state_rows is not None:  # stepped where they are
                q_feat[qrows] = self.quantum.step(st["quantum"], u, rows=state_rows[qrows])
                rep = self.quantum.report(st["quantum"], rows=state_rows[qrows])
            else:
                q_st = _rows_of(st["quantum"], qrows, B)
                q_feat[qrows] = self.quantum.step(q_st, u)
                rep = self.quantum.report(q_st)
                _write_back(st["quantum"], qrows, B, q_st)
            q_energy[qrows] = rep.energy
            q_coh[qrows] = rep.phase_coherence
            q_conv[qrows] = rep.converged
            q_iter[qrows] = rep.iterations
            q_res[qrows] = rep.residual

        # 4. readout, calibration, decision
        feats = np.concatenate(
            [
                projected,
                q_feat @ self.proj_quantum,
                patterns,
                z,
                np.ones((B, 1)),
            ],
            axis=1,
        )
        if learn is None:
            mean, scale = self.readout.predict(st["readout"], feats, rows=state_rows)
        else:  # the readout learns the outcomes of step 1 first (nothing since has read it)
            mean, scale = self.readout.learn_predict(st["readout"], *learn, feats, rows=state_rows)
        p_raw = ndtr(mean / scale)
        q = self.calibrator.transform(st["calibrator"], p_raw)
        warming = meta.n_outcomes < eng.warmup
        direction = np.where(q >= 0.5, 1, -1).astype(np.int8)
        direction[np.abs(q - 0.5) < eng.dead_band] = 0
        direction[warming] = 0
        confidence = np.where(q >= 0.5, q, 1.0 - q)
        confidence[warming] = 0.5
        pend.feats[ar, slot_now] = feats
        pend.mean[ar, slot_now] = mean
        pend.scale[ar, slot_now] = scale
        pend.p_raw[ar, slot_now] = p_raw
        pend.direction[ar, slot_now] = direction

        # anomaly: surprise of this point under the prediction it completes (or, before
        # the readout has learnt anything, of the normalised change under N(0, 1)),
        # combined (noisy-or) with the emergent novelty of the reservoir state
        surprise = np.where(ready & (meta.n_outcomes > 1), anomaly_pred, _surprise(r))
        anomaly = 1.0 - (1.0 - surprise) * (1.0 - emergent_strength)

        target_rms = rms
        gaps_med = _median_of_finite(meta.gaps)
        tr = trace.astype(np.float64)
        trace_stats = np.stack(
            [tr.mean(axis=1), tr.std(axis=1), tr.max(axis=1), (tr > 0.05).mean(axis=1)], axis=1
        )
        spike_count = spikes_out.sum(axis=(1, 2)).astype(np.int64)
        spike_rate = spike_count / (self.n_neurons * self.substeps * self.dt_ms / 1000.0)
        return WaveResult(
            seq=seq,
            timestamp=timestamp,
            direction=direction,
            confidence=confidence,
            magnitude=np.abs(mean) * target_rms,
            expected_change=mean * target_rms,
            uncertainty=scale * target_rms,
            mean=mean,
            scale=scale,
            horizon=meta.horizon.copy(),
            time_horizon_ms=h * gaps_med * 1000.0,
            warming_up=warming,
            anomaly=anomaly,
            patterns=patterns,
            spike_count=spike_count,
            spike_rate_hz=spike_rate,
            trace_stats=trace_stats,
            q_energy=q_energy,
            q_coherence=q_coh,
            q_converged=q_conv,
            q_iterations=q_iter,
            q_residual=q_res,
            outcome_ready=ready,
            outcome=outcome,
        )
