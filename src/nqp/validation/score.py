"""The validation score: a documented formula over measured, out-of-sample statistics.

The score (0–100) is the sum of three components, each computed only from the statistics
of :func:`nqp.validation.statistics.evaluate_predictions` on out-of-sample predictions:

* **direction** (40 points): the hit rate's excess over the better of a coin and the
  majority-direction predictor, as a fraction of the room above that base rate, scaled so
  that an excess of 0.2 earns full points, and multiplied by a significance factor of the
  one-sided exact binomial test against that base rate.
* **calibration** (30 points): the Brier skill score of the stated confidences against the
  majority-direction predictor with constant confidence ``m`` (Brier ``m (1 - m)``); a BSS
  of 0.2 earns full points, a BSS <= 0 earns none. Constant 0.5 confidence has BSS <= 0, and
  confidence pushed to 1 on predictions that are right half the time has Brier ≈ 0.5 and a
  strongly negative BSS, so confidence alone earns nothing.
* **magnitude** (30 points): the relative reduction of the NRMSE of the forecast change
  below the best baseline's (persistence, last change, online AR), a 30% reduction earning
  full points, times the significance factor of the one-sided Diebold–Mariano test that
  the model's squared error is lower.

The significance factor is 0 for ``p >= 0.05``, 1 for ``p <= 0.001`` and linear in
``log p`` between, so random predictions score 0 in most runs and a lucky one few points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nqp.exceptions import InvalidInputError

__all__ = [
    "FORMULA_TEXT",
    "ScoreBreakdown",
    "significance_factor",
    "validation_score",
]

DIRECTION_POINTS = 40.0
DIRECTION_FULL_EXCESS = 0.2
CALIBRATION_POINTS = 30.0
CALIBRATION_FULL_BSS = 0.2
MAGNITUDE_POINTS = 30.0
MAGNITUDE_FULL_REDUCTION = 0.3
ALPHA = 0.05
P_FULL = 0.001

FORMULA_TEXT = f"""\
score = direction + calibration + magnitude   (0 to 100; out-of-sample statistics only)

sig(p)      = clip(ln({ALPHA:g} / p) / ln({ALPHA:g} / {P_FULL:g}), 0, 1)
              (0 for p >= {ALPHA:g}, 1 for p <= {P_FULL:g}, linear in ln p between)

direction   = {DIRECTION_POINTS:g} * clip(excess / {DIRECTION_FULL_EXCESS:g}, 0, 1) * sig(p_binom)
              excess  = (hit - base) / (1 - base)
              hit     = hit rate of the up/down predictions (holds excluded)
              base    = max(0.5, majority rate m of the realised directions)
              p_binom = one-sided exact binomial p-value of hit > base

calibration = {CALIBRATION_POINTS:g} * clip(BSS / {CALIBRATION_FULL_BSS:g}, 0, 1)
              BSS     = 1 - Brier / (m (1 - m))
              Brier   = mean((confidence - right)^2) over the up/down predictions, where
                        confidence = stated probability that the direction is right and
                        right = 1 if it was; m (1 - m) is the Brier score of always stating
                        the majority direction with confidence m

magnitude   = {MAGNITUDE_POINTS:g} * clip(reduction / {MAGNITUDE_FULL_REDUCTION:g}, 0, 1)
                   * sig(p_DM)
              reduction = 1 - NRMSE_model / NRMSE_best
              NRMSE   = RMSE of the forecast change / std of the realised change
              best    = the baseline (persistence, last change, online AR) of lowest RMSE
              p_DM    = one-sided Diebold-Mariano (HLN-corrected) p-value that the
                        model's squared error is below the best baseline's

A component whose statistic cannot be computed (no up/down predictions, no baseline)
earns 0 points."""


def significance_factor(p_value: float | None) -> float:
    """``clip(ln(0.05 / p) / ln(0.05 / 0.001), 0, 1)``; 0 for a missing p-value.

    Examples
    --------
    >>> significance_factor(0.2), significance_factor(1e-5)
    (0.0, 1.0)
    >>> round(significance_factor(math.sqrt(0.05 * 0.001)), 10)
    0.5
    """
    if p_value is None or not math.isfinite(p_value):
        return 0.0
    if p_value <= 0.0:
        return 1.0
    return _clip(math.log(ALPHA / p_value) / math.log(ALPHA / P_FULL))


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


@dataclass(frozen=True)
class ScoreBreakdown:
    """The validation score with its parts.

    Attributes
    ----------
    score : float
        0 to 100: the sum of the components' points.
    components : dict of str to dict
        ``"direction"``, ``"calibration"``, ``"magnitude"``: each with ``points``,
        ``max_points`` and the statistics it was computed from.
    formula_text : str
        The formula, for the report.
    """

    score: float
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    formula_text: str = FORMULA_TEXT

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "score": self.score,
            "components": self.components,
            "formula_text": self.formula_text,
        }


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _direction(hit_stats: Mapping[str, Any]) -> dict[str, Any]:
    n = int(hit_stats.get("n") or 0)
    hit = _num(hit_stats.get("hit_rate"))
    majority = _num(hit_stats.get("majority_rate"))
    if n == 0 or not math.isfinite(hit):
        return {"points": 0.0, "max_points": DIRECTION_POINTS, "n": n, "note": "no predictions"}
    if math.isfinite(majority) and majority > 0.5:
        base, p = majority, _num(hit_stats.get("p_value_vs_majority"))
    else:
        base, p = 0.5, _num(hit_stats.get("p_value_vs_half"))
    excess = (hit - base) / (1.0 - base) if base < 1.0 else 0.0
    sig = significance_factor(p)
    points = DIRECTION_POINTS * _clip(excess / DIRECTION_FULL_EXCESS) * sig
    return {
        "points": points,
        "max_points": DIRECTION_POINTS,
        "n": n,
        "hit_rate": hit,
        "base_rate": base,
        "relative_excess": excess,
        "p_value": _finite_or_none(p),
        "significance": sig,
    }


def _calibration(cal: Mapping[str, Any]) -> dict[str, Any]:
    bss = _num(cal.get("brier_skill"))
    if cal.get("brier") is None:
        return {"points": 0.0, "max_points": CALIBRATION_POINTS, "note": "no predictions"}
    # a None skill with a Brier score present means -inf (perfect reference, imperfect model)
    bss = -math.inf if not math.isfinite(bss) else bss
    return {
        "points": CALIBRATION_POINTS * _clip(bss / CALIBRATION_FULL_BSS),
        "max_points": CALIBRATION_POINTS,
        "brier": float(cal["brier"]),
        "brier_reference": _num(cal.get("brier_reference")),
        "brier_skill": _finite_or_none(bss),
    }


def _magnitude(mag: Mapping[str, Any]) -> dict[str, Any]:
    best = mag.get("best_baseline")
    model = _num(mag.get("nrmse"))
    if best is None or not math.isfinite(model):
        return {"points": 0.0, "max_points": MAGNITUDE_POINTS, "note": "no baseline or no data"}
    entry = mag["baselines"][best]
    base = _num(entry.get("nrmse"))
    dm = entry.get("dm") or {}
    p = _num(dm.get("p_value_model_better"))
    reduction = 1.0 - model / base if math.isfinite(base) and base > 0.0 else 0.0
    sig = significance_factor(p)
    return {
        "points": MAGNITUDE_POINTS * _clip(reduction / MAGNITUDE_FULL_REDUCTION) * sig,
        "max_points": MAGNITUDE_POINTS,
        "nrmse": model,
        "best_baseline": best,
        "best_baseline_nrmse": _finite_or_none(base),
        "relative_reduction": reduction,
        "p_value": _finite_or_none(p),
        "significance": sig,
    }


def validation_score(stats: Mapping[str, Any]) -> ScoreBreakdown:
    """Score one variant's out-of-sample statistics (see the module docstring).

    Parameters
    ----------
    stats : mapping
        The dict returned by :func:`nqp.validation.statistics.evaluate_predictions`
        (keys ``"hit_rate"``, ``"calibration"``, ``"magnitude"`` are read).

    Returns
    -------
    ScoreBreakdown

    Examples
    --------
    >>> from nqp.validation.statistics import PredictionSet, evaluate_predictions
    >>> ps = PredictionSet(range(4), [1, -1, 1, -1], [0.5] * 4, [0.0] * 4, [1.0, 1.0, -1.0, -1.0])
    >>> validation_score(evaluate_predictions(ps, {"persistence": [0.0] * 4})).score
    0.0
    """
    try:
        parts = {
            "direction": _direction(stats["hit_rate"]),
            "calibration": _calibration(stats["calibration"]),
            "magnitude": _magnitude(stats["magnitude"]),
        }
    except (KeyError, TypeError) as exc:
        raise InvalidInputError(
            "stats must be the dict returned by evaluate_predictions (with 'hit_rate', "
            f"'calibration' and 'magnitude' sections); {exc!r}"
        ) from exc
    total = sum(float(c["points"]) for c in parts.values())
    return ScoreBreakdown(score=float(min(100.0, max(0.0, total))), components=parts)
