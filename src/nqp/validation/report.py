"""Validation results as JSON and a self-contained HTML report with PNG plots.

Two steps, so a backtest can store the JSON and render it later:

1. :func:`build_result` turns per-variant :class:`~nqp.validation.statistics.PredictionSet`
   objects (one per ablation: ``"neuromorphic"``, ``"quantum"``, ``"both"``) and the
   baseline forecasts into a JSON-able result dict with every statistic and the score.
2. :func:`write_report` writes ``result.json``, ``index.html`` and the PNG plots into a
   folder that references nothing outside itself.

Plots are drawn with matplotlib's object-oriented API on the Agg canvas (no pyplot, no
display, no global figure state); matplotlib is imported only when a report is written.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

from nqp._validation import Interval, validate_params
from nqp.exceptions import InvalidInputError
from nqp.validation.score import validation_score
from nqp.validation.statistics import PredictionSet, evaluate_predictions

__all__ = ["ABLATION_ORDER", "build_result", "write_report"]

#: Display order of the ablation variants; other variant names follow in their own order.
ABLATION_ORDER = ("neuromorphic", "quantum", "both")

_PLOTS = {
    "reliability": "reliability.png",
    "predictions": "predictions.png",
    "cumulative_hit_rate": "cumulative_hit_rate.png",
    "ablation": "ablation.png",
}


def build_result(
    predictions: Mapping[str, PredictionSet],
    baselines: Mapping[str, ArrayLike] | None = None,
    *,
    horizon: int = 1,
    primary: str = "both",
    n_bins: int = 10,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Statistics and scores of every variant, as one JSON-able dict.

    Parameters
    ----------
    predictions : mapping of str to PredictionSet
        One entry per variant, e.g. ``{"neuromorphic": ..., "quantum": ..., "both": ...}``;
        all over the same origins as ``baselines``.
    baselines : mapping of str to array-like of shape (n,), optional
        Baseline forecasts of the change (see :func:`nqp.validation.baselines.
        baseline_forecasts`), NaN where not yet available.
    horizon : int, default=1
    primary : str, default="both"
        The variant whose score is the headline ``"score"``.
    n_bins : int, default=10
    metadata : mapping, optional
        JSON-able description of the run (dataset, seed, engine settings, ...), shown in the
        report as given.

    Returns
    -------
    dict
        ``{"metadata", "horizon", "primary", "variants": {name: evaluate_predictions(...)},
        "scores": {name: ScoreBreakdown.to_dict()}, "score": scores[primary]}``.

    Examples
    --------
    >>> ps = PredictionSet(range(4), [1, -1, 1, -1], [0.5] * 4, [0.0] * 4, [1.0, 1.0, -1.0, -1.0])
    >>> r = build_result({"both": ps}, {"persistence": [0.0] * 4})
    >>> r["score"]["score"], sorted(r["variants"])
    (0.0, ['both'])
    """
    validate_params("build_result", {"horizon": horizon}, {"horizon": [Interval("int", 1, None)]})
    if primary not in predictions:
        raise InvalidInputError(
            f"primary variant {primary!r} is not among the predictions {sorted(predictions)}."
        )
    variants = {
        str(name): evaluate_predictions(ps, baselines, horizon=horizon, n_bins=n_bins)
        for name, ps in predictions.items()
    }
    scores = {name: validation_score(stats).to_dict() for name, stats in variants.items()}
    return {
        "metadata": dict(metadata or {}),
        "horizon": horizon,
        "primary": primary,
        "variants": variants,
        "scores": scores,
        "score": scores[primary],
    }


# --------------------------------------------------------------------------- plots


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "write_report needs matplotlib: pip install matplotlib (or the package's extras)."
        ) from exc
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png", metadata={"Software": None})
    fig.clear()


def _ordered(names: list[str]) -> list[str]:
    first = [n for n in ABLATION_ORDER if n in names]
    return first + [n for n in names if n not in first]


def _plot_reliability(variants: Mapping[str, Any], names: list[str], path: Path) -> None:
    fig = _figure(6.0, 6.5)
    ax, axc = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", label="perfect calibration")
    for name in names:
        rel = variants[name]["calibration"]["reliability"]
        if rel["mean_p"]:
            ax.plot(rel["mean_p"], rel["freq"], marker="o", label=name)
            axc.plot(rel["mean_p"], rel["count"], marker=".", label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed frequency right")
    ax.set_title("Reliability: stated confidence vs observed hit frequency")
    ax.legend(loc="upper left")
    axc.set(xlabel="stated confidence (bin mean)", ylabel="predictions")
    _save(fig, path)


def _plot_ablation(
    variants: Mapping[str, Any],
    scores: Mapping[str, Any],
    names: list[str],
    primary: str,
    path: Path,
) -> None:
    fig = _figure(11.0, 4.0)
    axes = fig.subplots(1, 3)
    x = np.arange(len(names))

    def values(get: Any) -> np.ndarray:
        return np.array([math.nan if get(n) is None else float(get(n)) for n in names])

    hit = values(lambda n: variants[n]["hit_rate"]["hit_rate"])
    lo = values(lambda n: variants[n]["hit_rate"]["ci_low"])
    hi = values(lambda n: variants[n]["hit_rate"]["ci_high"])
    brier = values(lambda n: variants[n]["calibration"]["brier"])
    err = values(lambda n: variants[n]["magnitude"]["nrmse"])
    panels = [
        (axes[0], hit, "hit rate (95% CI)", 0.5, "coin (0.5)"),
        (axes[1], brier, "Brier score (lower is better)", None, None),
        (axes[2], err, "NRMSE of the change (lower is better)", None, None),
    ]
    for ax, vals, title, ref, ref_label in panels:
        ok = np.isfinite(vals)
        ax.bar(x[ok], vals[ok], color="tab:blue")
        for i in np.flatnonzero(~ok):
            ax.text(x[i], 0.0, "n/a", ha="center", va="bottom")
        if ref is not None:
            ax.axhline(ref, color="0.3", linestyle="--", label=ref_label)
        ax.set_xticks(x, names)
        ax.set_title(title)
    ok = np.isfinite(hit) & np.isfinite(lo) & np.isfinite(hi)
    if ok.any():
        yerr = np.vstack([hit[ok] - lo[ok], hi[ok] - hit[ok]])
        axes[0].errorbar(x[ok], hit[ok], yerr=yerr, fmt="none", color="k", capsize=4)
    axes[0].set_ylim(0, 1)
    axes[0].legend(loc="lower right")
    first = variants[primary]  # reference lines of the scored variant
    ref_brier = first["calibration"]["brier_reference"]
    if ref_brier is not None:
        axes[1].axhline(ref_brier, color="0.3", linestyle="--", label="majority predictor")
        axes[1].legend(loc="lower right")
    best = first["magnitude"]["best_baseline"]
    if best is not None and first["magnitude"]["baselines"][best]["nrmse"] is not None:
        axes[2].axhline(
            first["magnitude"]["baselines"][best]["nrmse"],
            color="0.3",
            linestyle="--",
            label=f"best baseline ({best})",
        )
        axes[2].legend(loc="lower right")
    labels = [f"{n}\n{scores[n]['score']:.1f}/100" for n in names]
    axes[0].set_xticks(x, labels)
    _save(fig, path)


def _plot_predictions(
    ps: PredictionSet, baseline: tuple[str, np.ndarray] | None, path: Path, last: int = 500
) -> None:
    fig = _figure(11.0, 4.5)
    ax, axs = fig.subplots(1, 2, width_ratios=[2, 1])
    sl = slice(max(0, len(ps) - last), len(ps))
    ax.plot(ps.index[sl], ps.realised_change[sl], color="k", linewidth=1.0, label="realised")
    ax.plot(ps.index[sl], ps.predicted_change[sl], color="tab:blue", linewidth=1.0, label="model")
    if baseline is not None:
        name, f = baseline
        ax.plot(ps.index[sl], f[sl], color="tab:orange", linewidth=0.8, label=name)
    ax.axhline(0.0, color="0.6", linewidth=0.5)
    ax.set(xlabel="prediction origin", ylabel="change over the horizon")
    ax.set_title(f"Forecast vs realised change (last {sl.stop - sl.start} points)")
    ax.legend(loc="upper left")
    axs.scatter(ps.predicted_change, ps.realised_change, s=4, alpha=0.4, color="tab:blue")
    lim = float(np.max(np.abs(np.concatenate([ps.predicted_change, ps.realised_change]))))
    lim = lim if lim > 0 else 1.0
    axs.plot([-lim, lim], [-lim, lim], color="0.5", linestyle="--")
    axs.set(xlabel="forecast change", ylabel="realised change", xlim=(-lim, lim), ylim=(-lim, lim))
    axs.set_title("All points")
    _save(fig, path)


def _plot_cumulative(ps: PredictionSet, majority: float | None, path: Path) -> None:
    fig = _figure(8.0, 4.0)
    ax = fig.subplots()
    active, right = ps.correctness()
    if right.size:
        k = np.arange(1, right.size + 1)
        x = ps.index[active]
        lo, hi = scipy.stats.binom.interval(0.95, k, 0.5)
        ax.fill_between(x, lo / k, hi / k, color="0.85", label="95% band of a coin (binomial)")
        ax.plot(x, np.cumsum(right) / k, color="tab:blue", label="cumulative hit rate")
        if majority is not None:
            ax.axhline(majority, color="tab:orange", linestyle=":", label="majority rate")
    else:
        ax.text(0.5, 0.5, "no up/down predictions", ha="center", transform=ax.transAxes)
    ax.axhline(0.5, color="0.3", linestyle="--", label="0.5")
    ax.set(ylim=(0, 1), xlabel="prediction origin", ylabel="hit rate so far")
    ax.set_title("Cumulative hit rate (holds excluded)")
    ax.legend(loc="lower right")
    _save(fig, path)


# --------------------------------------------------------------------------- HTML


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool | str):
        return html.escape(str(x))
    if isinstance(x, int | np.integer):
        return str(int(x))
    v = float(x)
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}g}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.score { font-size: 2.4em; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
"""


def _html(result: Mapping[str, Any], names: list[str], plots: list[str], title: str) -> str:
    primary = result["primary"]
    score = result["score"]
    variants, scores = result["variants"], result["scores"]
    stats = variants[primary]
    parts = [f"<h1>{html.escape(title)}</h1>"]
    meta = dict(result.get("metadata") or {})
    meta.setdefault("horizon (steps)", result.get("horizon"))
    meta.setdefault("scored variant", primary)
    meta.setdefault("predictions", stats["n"])
    parts.append(
        _table(["run", "value"], [[k, json.dumps(v, default=str)] for k, v in meta.items()])
    )
    parts.append(
        f'<h2>Validation score</h2><p class="score">{score["score"]:.1f} / 100</p>'
        f"<p>Variant <b>{html.escape(primary)}</b>. Every component is computed from "
        "out-of-sample statistics only.</p>"
    )
    comp_rows = []
    for cname, comp in score["components"].items():
        inputs = ", ".join(
            f"{k}={_fmt(v)}" for k, v in comp.items() if k not in ("points", "max_points")
        )
        comp_rows.append([cname, comp["points"], comp["max_points"], inputs])
    parts.append(_table(["component", "points", "max", "from"], comp_rows))
    parts.append(f"<h3>Formula</h3><pre>{html.escape(score['formula_text'])}</pre>")

    parts.append("<h2>Ablations</h2>")
    rows = []
    for n in names:
        s, hr, cal = variants[n], variants[n]["hit_rate"], variants[n]["calibration"]
        rows.append(
            [
                n,
                scores[n]["score"],
                hr["n"],
                hr["hit_rate"],
                f"[{_fmt(hr['ci_low'], 3)}, {_fmt(hr['ci_high'], 3)}]",
                hr["p_value_vs_half"],
                hr["majority_rate"],
                hr["p_value_vs_majority"],
                cal["brier"],
                cal["brier_skill"],
                cal["ece"],
                s["magnitude"]["nrmse"],
            ]
        )
    parts.append(
        _table(
            [
                "variant",
                "score",
                "n (up/down)",
                "hit rate",
                "95% CI",
                "p vs 0.5",
                "majority rate",
                "p vs majority",
                "Brier",
                "Brier skill",
                "ECE",
                "NRMSE",
            ],
            rows,
        )
    )
    if _PLOTS["ablation"] in plots:
        parts.append(f'<img src="{_PLOTS["ablation"]}" alt="ablation bars">')

    mag = stats["magnitude"]
    parts.append(
        f"<h2>Baselines ({html.escape(primary)}, {mag['n']} common points)</h2>"
        "<p>DM: Diebold–Mariano test on squared errors, HLN-corrected, t(n−1); "
        "negative statistic = model better.</p>"
    )
    rows = [[f"model ({primary})", mag["mae"], mag["nrmse"], None, None, None, None]]
    for bname, b in mag["baselines"].items():
        dm = b["dm"] or {}
        rows.append(
            [
                bname,
                b["mae"],
                b["nrmse"],
                b["hit_rate"]["hit_rate"],
                dm.get("statistic"),
                dm.get("p_value"),
                dm.get("p_value_model_better"),
            ]
        )
    parts.append(
        _table(
            [
                "forecaster",
                "MAE",
                "NRMSE",
                "direction hit rate",
                "DM statistic",
                "p (two-sided)",
                "p (model better)",
            ],
            rows,
        )
    )
    regimes = stats.get("regimes")
    if regimes:
        parts.append(f"<h2>Per regime ({html.escape(primary)})</h2>")
        rows = [
            [
                label,
                r["n"],
                r["n_directional"],
                r["hit_rate"],
                r["p_value_vs_half"],
                r["brier"],
                r["nrmse"],
                r["best_baseline"],
                r["best_baseline_nrmse"],
            ]
            for label, r in regimes.items()
        ]
        parts.append(
            _table(
                [
                    "regime",
                    "n",
                    "n (up/down)",
                    "hit rate",
                    "p vs 0.5",
                    "Brier",
                    "NRMSE",
                    "best baseline",
                    "its NRMSE",
                ],
                rows,
            )
        )
    captions = {
        "reliability": "Reliability diagram",
        "predictions": "Predictions vs outcomes",
        "cumulative_hit_rate": "Cumulative hit rate",
    }
    for key, caption in captions.items():
        if _PLOTS[key] in plots:
            parts.append(f'<h2>{caption}</h2><img src="{_PLOTS[key]}" alt="{caption}">')
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_report(
    result: Mapping[str, Any],
    out_dir: str | Path,
    *,
    predictions: Mapping[str, PredictionSet] | None = None,
    baselines: Mapping[str, ArrayLike] | None = None,
    title: str = "NQP validation report",
) -> Path:
    """Write ``result.json``, ``index.html`` and the PNG plots into ``out_dir``.

    Parameters
    ----------
    result : mapping
        As returned by :func:`build_result` (JSON-able; a stored one read back works too).
    out_dir : str or Path
        Created if missing; files of the same names are overwritten.
    predictions : mapping of str to PredictionSet, optional
        The per-prediction arrays behind ``result``; needed for the predictions-vs-outcomes
        and cumulative-hit-rate plots of the primary variant (left out without them).
    baselines : mapping of str to array-like of shape (n,), optional
        If given, the best baseline is drawn beside the model's forecasts.
    title : str, default="NQP validation report"

    Returns
    -------
    Path
        ``out_dir / "index.html"``. The folder is self-contained: the HTML refers only to
        the PNG files beside it.
    """
    for key in ("primary", "variants", "scores", "score"):
        if key not in result:
            raise InvalidInputError(f"result lacks {key!r}; build it with build_result().")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    variants = result["variants"]
    names = _ordered(list(variants))
    primary = result["primary"]
    plots = [_PLOTS["reliability"], _PLOTS["ablation"]]
    _plot_reliability(variants, names, out / _PLOTS["reliability"])
    _plot_ablation(variants, result["scores"], names, primary, out / _PLOTS["ablation"])
    if predictions is not None and primary in predictions:
        ps = predictions[primary]
        best = variants[primary]["magnitude"]["best_baseline"]
        base = None
        if baselines is not None and best in baselines:
            base = (best, np.asarray(baselines[best], dtype=np.float64))
        _plot_predictions(ps, base, out / _PLOTS["predictions"])
        _plot_cumulative(
            ps, variants[primary]["hit_rate"]["majority_rate"], out / _PLOTS["cumulative_hit_rate"]
        )
        plots += [_PLOTS["predictions"], _PLOTS["cumulative_hit_rate"]]
    index = out / "index.html"
    index.write_text(_html(result, names, plots, title), encoding="utf-8")
    return index
