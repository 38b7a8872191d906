"""``nqp optimize`` commands, driven through typer's CliRunner."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from nqp._cli_optimize import optimize_app
from nqp.quantum.ising import qubo_energy
from nqp.quantum.problems import read_gset

GSET = Path(__file__).parents[1] / "../shared/data/gset"
runner = CliRunner()


def _gset_text(n: int, seed: int) -> tuple[str, list[tuple[int, int, int]]]:
    rng = np.random.default_rng(seed)
    edges = [
        (i, j, int(rng.choice([-1, 1])))
        for i in range(n)
        for j in range(i + 1, n)
        if rng.random() < 0.4
    ]
    lines = [f"{n} {len(edges)}"] + [f"{i + 1} {j + 1} {w}" for i, j, w in edges]
    return "\n".join(lines) + "\n", edges


def _cut(edges, partition):
    return sum(w for i, j, w in edges if partition[i] != partition[j])


def test_maxcut_json_output_matches_partition(tmp_path):
    text, edges = _gset_text(12, 0)
    f = tmp_path / "g.txt"
    f.write_text(text)
    res = runner.invoke(optimize_app, ["maxcut", str(f), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == "exact"
    assert len(out["partition"]) == 12
    assert set(out["partition"]) <= {0, 1}
    assert out["cut"] == _cut(edges, out["partition"])
    best = max(_cut(edges, p) for p in itertools.product([0, 1], repeat=12))
    assert out["cut"] == best
    assert out["cut"] == (sum(w for *_, w in edges) - out["energy"]) / 2
    for key in ("time_s", "reads", "reads_completed", "sweeps", "method"):
        assert key in out


def test_maxcut_anneal_options_and_reproducibility(tmp_path):
    text, edges = _gset_text(30, 1)
    f = tmp_path / "g.txt"
    f.write_text(text)
    args = ["maxcut", str(f), "--reads", "6", "--sweeps", "200", "--seed", "5", "--json"]
    a = json.loads(runner.invoke(optimize_app, args).stdout)
    b = json.loads(runner.invoke(optimize_app, [*args, "--jobs", "1"]).stdout)
    assert a["method"] == "anneal"
    assert (a["reads"], a["sweeps"], a["seed"], a["reads_completed"]) == (6, 200, 5, 6)
    assert a["partition"] == b["partition"]
    assert a["cut"] == _cut(edges, a["partition"])
    c = json.loads(runner.invoke(optimize_app, [*args, "--beta", "0.1,3"]).stdout)
    assert c["beta_range"] == [0.1, 3.0]
    d = json.loads(runner.invoke(optimize_app, [*args, "--beta", "neal"]).stdout)
    assert d["beta_range"][0] < a["beta_range"][0]  # the default "typical" rule starts colder

    bad = runner.invoke(optimize_app, [*args, "--beta", "hot"])
    assert bad.exit_code == 2
    assert "--beta must be" in bad.stderr


def test_maxcut_g1_cli(tmp_path):
    path = GSET / "G1.txt"
    if not path.exists():
        pytest.skip(f"Gset data not found at {path.resolve()} (shared/ beside the repo)")
    res = runner.invoke(
        optimize_app,
        [
            "maxcut",
            str(path),
            "--reads",
            "2",
            "--sweeps",
            "500",
            "--seed",
            "1",
            "--best-known",
            "11624",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["nodes"], out["edges"]) == (800, 19176)
    assert out["cut"] == read_gset(path).cut_value(np.array(out["partition"]))
    assert out["gap"] == 11624 - out["cut"]
    assert out["cut"] >= 11400


def test_maxcut_summary_without_json(tmp_path):
    text, _ = _gset_text(8, 2)
    f = tmp_path / "g.txt"
    f.write_text(text)
    res = runner.invoke(optimize_app, ["maxcut", str(f)])
    assert res.exit_code == 0
    assert "cut " in res.stdout
    assert "exact" in res.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(res.stdout)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("3 2\n1 2 1\n2 2 1\n", "line 3: self-loop"),
        ("3 2\n1 2 1\n", "declares 2 edges, found 1"),
        ("3 1\n1 9 1\n", "line 2: node numbers"),
    ],
)
def test_bad_maxcut_file_exits_2_naming_the_line(tmp_path, text, match):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    res = runner.invoke(optimize_app, ["maxcut", str(f), "--json"])
    assert res.exit_code == 2
    assert match in res.stderr
    assert "Traceback" not in res.output
    assert res.stdout == ""


def test_missing_file_and_bad_option_exit_2(tmp_path):
    res = runner.invoke(optimize_app, ["maxcut", str(tmp_path / "nope.txt")])
    assert res.exit_code == 2
    assert "No such file" in res.stderr
    text, _ = _gset_text(5, 0)
    f = tmp_path / "g.txt"
    f.write_text(text)
    res = runner.invoke(optimize_app, ["maxcut", str(f), "--method", "qaoa"])
    assert res.exit_code == 2
    assert "'method' parameter" in res.stderr
    res = runner.invoke(optimize_app, ["maxcut", str(f), "--reads", "0"])
    assert res.exit_code == 2
    assert "'num_reads' parameter" in res.stderr


def test_qubo_command(tmp_path, rng):
    n = 8
    Q = rng.normal(size=(n, n))
    f = tmp_path / "q.json"
    f.write_text(json.dumps({"Q": Q.tolist(), "offset": 1.0}))
    res = runner.invoke(optimize_app, ["qubo", str(f), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    xs = np.array(list(itertools.product([0, 1], repeat=n)), dtype=float)
    assert out["energy"] == pytest.approx(qubo_energy(Q, xs, 1.0).min())
    assert out["energy"] == pytest.approx(float(qubo_energy(Q, np.array(out["solution"]), 1.0)))
    assert "time_s" in out
    human = runner.invoke(optimize_app, ["qubo", str(f)])
    assert "energy" in human.stdout


def test_qubo_bad_file(tmp_path):
    f = tmp_path / "q.json"
    f.write_text('{"n": 2, "terms": [[0, 5, 1.0]]}')
    res = runner.invoke(optimize_app, ["qubo", str(f), "--json"])
    assert res.exit_code == 2
    assert "field 'terms', term 0" in res.stderr


def test_portfolio_command(tmp_path):
    mu = [0.10, 0.20, 0.15, 0.05]
    sigma = np.diag([0.10, 0.40, 0.10, 0.01]).tolist()
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"mu": mu, "sigma": sigma, "budget": 2, "risk_aversion": 0.5}))
    res = runner.invoke(optimize_app, ["portfolio", str(f), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    # objectives of the 2-subsets: {0,2} = 0.25 - 0.5 * 0.2 = 0.15 is the best
    assert out["selected"] == [0, 2]
    assert out["expected_return"] == pytest.approx(0.25)
    assert out["risk"] == pytest.approx(0.2)
    assert out["objective"] == pytest.approx(0.15)
    assert out["energy"] == pytest.approx(-0.15)
    assert out["budget_satisfied"]
    human = runner.invoke(optimize_app, ["portfolio", str(f)])
    assert "selected [0, 2]" in human.stdout


def test_portfolio_bad_field(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"mu": [0.1], "sigma": [[1.0]], "budget": 3, "risk_aversion": 1}))
    res = runner.invoke(optimize_app, ["portfolio", str(f)])
    assert res.exit_code == 2
    assert "field 'budget'" in res.stderr


def test_mounts_under_a_parent_app(tmp_path):
    app = typer.Typer()
    app.add_typer(optimize_app, name="optimize")

    @app.command()
    def other() -> None:  # a second command so the parent stays a group
        """Unrelated."""

    text, edges = _gset_text(6, 3)
    f = tmp_path / "g.txt"
    f.write_text(text)
    res = runner.invoke(app, ["optimize", "maxcut", str(f), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["cut"] == _cut(edges, out["partition"])
