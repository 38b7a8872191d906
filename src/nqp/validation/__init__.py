"""Validation: out-of-sample statistics, baselines, the validation score and the HTML report.

Statistics that can fail (hit rate with exact binomial tests, Brier score and calibration
error, Diebold–Mariano against online baselines, per-regime results), a documented score
built only from them, and a self-contained HTML report with PNG plots.
"""

from nqp.validation.backtest import VARIANTS, BacktestRun, walk_forward
from nqp.validation.baselines import (
    OnlineAR,
    baseline_forecasts,
    change_target,
    last_change,
    zero_change,
)
from nqp.validation.report import build_result, write_report
from nqp.validation.score import FORMULA_TEXT, ScoreBreakdown, significance_factor, validation_score
from nqp.validation.statistics import (
    DMResult,
    HitRateResult,
    PredictionSet,
    brier_score,
    brier_skill_score,
    diebold_mariano,
    evaluate_predictions,
    expected_calibration_error,
    hit_rate_test,
    mae,
    nrmse,
    reliability_curve,
    summarise_by_regime,
    to_direction,
)
from nqp.validation.summary import summarise

__all__ = [
    "FORMULA_TEXT",
    "VARIANTS",
    "BacktestRun",
    "DMResult",
    "HitRateResult",
    "OnlineAR",
    "PredictionSet",
    "ScoreBreakdown",
    "baseline_forecasts",
    "brier_score",
    "brier_skill_score",
    "build_result",
    "change_target",
    "diebold_mariano",
    "evaluate_predictions",
    "expected_calibration_error",
    "hit_rate_test",
    "last_change",
    "mae",
    "nrmse",
    "reliability_curve",
    "significance_factor",
    "summarise",
    "summarise_by_regime",
    "to_direction",
    "validation_score",
    "walk_forward",
    "write_report",
    "zero_change",
]
