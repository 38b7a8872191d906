"""Settings come from NQP_* environment variables and are validated."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from nqp.config import Settings


def test_defaults_are_valid():
    s = Settings()
    assert s.quantum.qubit_count == 5
    assert s.neuromorphic.reservoir in ("lif", "esn")


def test_env_vars_override_nested_sections(monkeypatch):
    monkeypatch.setenv("NQP_SEED", "7")
    monkeypatch.setenv("NQP_NEUROMORPHIC__N_NEURONS", "512")
    monkeypatch.setenv("NQP_QUANTUM__QUBIT_COUNT", "6")
    s = Settings()
    assert (s.seed, s.neuromorphic.n_neurons, s.quantum.qubit_count) == (7, 512, 6)


def test_invalid_value_names_the_field(monkeypatch):
    monkeypatch.setenv("NQP_NEUROMORPHIC__CONNECTIVITY", "1.5")
    with pytest.raises(ValidationError, match="connectivity"):
        Settings()


def test_unknown_option_is_rejected():
    with pytest.raises(ValidationError, match="encoding"):
        Settings(neuromorphic={"encoding": "morse"})


@pytest.mark.parametrize(("cores", "want"), [(1, 1), (2, 2), (16, 2)])
def test_engine_processes_default_follows_the_usable_cores(monkeypatch, cores, want):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert Settings().service.engine_process_count == want
    explicit = Settings(service={"engine_processes": 3}).service
    assert explicit.engine_process_count == 3


def test_engine_processes_is_validated(monkeypatch):
    monkeypatch.setenv("NQP_SERVICE__ENGINE_PROCESSES", "0")
    with pytest.raises(ValidationError, match="engine_processes"):
        Settings()
