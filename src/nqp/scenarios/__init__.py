"""Demo scenarios: synthetic live streams fed to NQP through its public API.

Generators (iterators: ``next(scenario)`` gives one timestamped point per source):

- :class:`MarketScenario`: five tickers under regime-switching GBM, with volatility spikes
  and trend reversals that can be triggered (:meth:`MarketScenario.trigger`);
- :class:`IoTScenario`: temperature, pressure and vibration with drift, noise and
  labelled anomalies;
- :class:`MaintenanceScenario`: machine telemetry degrading toward a known failure time,
  beside a healthy control machine;
- :class:`PortfolioScenario`: periodic portfolio re-optimisation from the market's
  rolling returns.

:func:`run_scenario` / :func:`stream_scenarios` stream them to a server over HTTP and
return :class:`ScenarioSummary` objects; :func:`format_summary` prints one.
"""

from __future__ import annotations

from nqp.scenarios.base import Scenario, ScenarioPoint
from nqp.scenarios.iot import AnomalyEvent, IoTScenario
from nqp.scenarios.maintenance import MachineRun, MaintenanceScenario
from nqp.scenarios.market import MARKET_EVENTS, MarketScenario, parse_event
from nqp.scenarios.portfolio import PortfolioScenario, Rebalance
from nqp.scenarios.registry import DEFAULT_RATES, SCENARIO_NAMES, make_scenario
from nqp.scenarios.report import format_summary, print_summaries
from nqp.scenarios.runner import run_scenario, run_scenarios, stream_scenarios
from nqp.scenarios.scoring import (
    AnomalyStats,
    HitStats,
    KindDetection,
    MaintenanceStats,
    RunOutcome,
    ScenarioScore,
)
from nqp.scenarios.summary import PortfolioStats, ScenarioSummary

__all__ = [
    "DEFAULT_RATES",
    "MARKET_EVENTS",
    "SCENARIO_NAMES",
    "AnomalyEvent",
    "AnomalyStats",
    "HitStats",
    "IoTScenario",
    "KindDetection",
    "MachineRun",
    "MaintenanceScenario",
    "MaintenanceStats",
    "MarketScenario",
    "PortfolioScenario",
    "PortfolioStats",
    "Rebalance",
    "RunOutcome",
    "Scenario",
    "ScenarioPoint",
    "ScenarioScore",
    "ScenarioSummary",
    "format_summary",
    "make_scenario",
    "parse_event",
    "print_summaries",
    "run_scenario",
    "run_scenarios",
    "stream_scenarios",
]
