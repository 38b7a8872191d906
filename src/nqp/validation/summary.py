"""The headline figures of a validation result (the CLI's ``--json`` object, the API's summary)."""

from __future__ import annotations

from typing import Any

__all__ = ["summarise"]


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of a :func:`nqp.validation.build_result` dict.

    Score (0-100) and its components, hit rate with its exact binomial p-values against
    0.5 and the majority class, Brier score and skill, expected calibration error, NRMSE,
    each baseline's NRMSE with the Diebold-Mariano p-value of the model being better, one
    line per ablation, and per-regime figures when the dataset has regimes. Figures are of
    the primary variant (``result["primary"]``, ``"both"`` for :func:`walk_forward`).
    """
    primary = result["primary"]
    stats = result["variants"][primary]
    hit = stats["hit_rate"]
    cal = stats["calibration"]
    mag = stats["magnitude"]
    meta = result.get("metadata", {})
    return {
        "dataset": meta.get("dataset"),
        "points": meta.get("points"),
        "scored": stats["n"],
        "horizon": result["horizon"],
        "primary": primary,
        "score": result["score"]["score"],
        "score_components": result["score"]["components"],
        "hit_rate": hit["hit_rate"],
        "hit_rate_p_value": hit["p_value_vs_half"],
        "majority_rate": hit["majority_rate"],
        "hit_rate_p_value_vs_majority": hit["p_value_vs_majority"],
        "directional_predictions": hit["n"],
        "brier": cal["brier"],
        "brier_skill": cal["brier_skill"],
        "ece": cal["ece"],
        "nrmse": mag["nrmse"],
        "baselines": {
            name: {"nrmse": b["nrmse"], "dm_p_value_model_better": b["dm"]["p_value_model_better"]}
            for name, b in mag["baselines"].items()
        },
        "ablations": {
            name: {
                "score": result["scores"][name]["score"],
                "hit_rate": s["hit_rate"]["hit_rate"],
                "brier": s["calibration"]["brier"],
                "nrmse": s["magnitude"]["nrmse"],
            }
            for name, s in result["variants"].items()
        },
        "regimes": stats.get("regimes"),
    }
