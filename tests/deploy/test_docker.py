"""The container image definition: deploy/Dockerfile, its ignore file and entrypoint.

The image is not built here (no Docker daemon is assumed); the Dockerfile is parsed and
its properties checked, and the entrypoint script is run for real with a stand-in ``nqp``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|API_?KEY|PRIVATE|CREDENTIAL", re.IGNORECASE)


def parse_dockerfile(text: str) -> list[tuple[int, str, str]]:
    """``(stage, INSTRUCTION, arguments)`` per instruction; stage counts FROM lines from 0."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment lines inside a continuation are dropped by Docker too
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        logical.append(buf + line)
        buf = ""
    assert not buf, "Dockerfile ends inside a line continuation"
    out: list[tuple[int, str, str]] = []
    stage = -1
    for line in logical:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stage += 1
        out.append((stage, instr, args.strip()))
    return out


def final_stage(instructions: list[tuple[int, str, str]]) -> list[tuple[str, str]]:
    last = max(s for s, _, _ in instructions)
    return [(i, a) for s, i, a in instructions if s == last]


def resolve_args(instructions: list[tuple[int, str, str]], value: str) -> str:
    """Expand ``${NAME}`` from the ARG defaults declared anywhere in the file."""
    defaults = {}
    for _, instr, args in instructions:
        if instr == "ARG" and "=" in args:
            name, _, default = args.partition("=")
            defaults[name.strip()] = default.strip()
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), value)


@pytest.fixture(scope="module")
def instructions() -> list[tuple[int, str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_parser_handles_continuations_and_stages():
    text = "ARG A=1\nFROM x AS b\n# c\nRUN a \\\n  # inner\n  && b\nFROM y\nUSER 5\n"
    parsed = parse_dockerfile(text)
    assert parsed == [
        (-1, "ARG", "A=1"),
        (0, "FROM", "x AS b"),
        (0, "RUN", "a && b"),
        (1, "FROM", "y"),
        (1, "USER", "5"),
    ]


def test_runtime_stage_is_slim_and_multi_stage(instructions):
    froms = [resolve_args(instructions, a) for _, i, a in instructions if i == "FROM"]
    assert len(froms) >= 2, "expected a builder stage and a runtime stage"
    runtime_base = froms[-1].split()[0]
    assert runtime_base.startswith("python:3.11"), runtime_base
    assert "slim" in runtime_base, f"runtime base {runtime_base} is not a slim image"
    assert ":latest" not in runtime_base


def test_runs_as_non_root_numeric_user(instructions):
    final = final_stage(instructions)
    users = [resolve_args(instructions, a) for i, a in final if i == "USER"]
    assert users, "the runtime stage never sets USER"
    user = users[-1].split(":")[0]
    assert user.isdigit(), f"USER should be numeric so runAsNonRoot can verify it: {user}"
    assert int(user) >= 1000
    # nothing after the last USER switches back to root
    idx = max(n for n, (i, _) in enumerate(final) if i == "USER")
    assert all(i != "USER" for i, _ in final[idx + 1 :])
    # the user is created in the image with that uid
    runs = " ".join(resolve_args(instructions, a) for i, a in final if i == "RUN")
    assert f"--uid {user}" in runs


def test_healthcheck_probes_liveness(instructions):
    final = final_stage(instructions)
    checks = [a for i, a in final if i == "HEALTHCHECK"]
    assert len(checks) == 1
    check = checks[0]
    assert "CMD" in check
    assert "NONE" not in check.split()
    assert "--interval=" in check
    assert "--timeout=" in check
    env = " ".join(a for i, a in final if i == "ENV")
    assert "HEALTHCHECK_URL=http://127.0.0.1:8000/healthz" in env
    assert "HEALTHCHECK_URL" in check


def test_no_secrets_in_image(instructions):
    for _, instr, args in instructions:
        if instr in {"ENV", "ARG", "LABEL"}:
            for name in re.findall(r"(\w+)=", args):
                assert not SECRET_WORDS.search(name), f"{instr} {name} looks like a secret"
    copied = [a for _, i, a in instructions if i in {"COPY", "ADD"}]
    for args in copied:
        for src in args.split()[:-1]:
            if src.startswith("--"):
                continue
            assert not re.search(r"\.env|\.key|\.pem|secret", src, re.IGNORECASE), src


def test_copied_sources_exist(instructions):
    for _, instr, args in instructions:
        if instr != "COPY" or "--from=" in args:
            continue
        for src in args.split()[:-1]:
            assert (ROOT / src).exists(), f"COPY source {src} is missing"


def test_entrypoint_and_default_command(instructions):
    final = final_stage(instructions)
    entry = json.loads(next(a for i, a in final if i == "ENTRYPOINT"))
    cmd = json.loads(next(a for i, a in final if i == "CMD"))
    assert entry == ["/usr/local/bin/nqp-entrypoint"]
    assert cmd[0] == "serve"
    assert "0.0.0.0" in cmd
    copies = " ".join(a for i, a in final if i == "COPY")
    assert "deploy/docker/entrypoint.sh /usr/local/bin/nqp-entrypoint" in copies
    assert any(i == "STOPSIGNAL" and a == "SIGTERM" for i, a in final)


def _dockerignore_excluded(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern that matches decides; '!' re-includes."""

    def to_regex(p: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(p):
            if p.startswith("**", i):
                out += ".*"
                i += 2
                if i < len(p) and p[i] == "/":
                    out = out[:-2] + "(?:.*/)?"
                    i += 1
            elif p[i] == "*":
                out += "[^/]*"
                i += 1
            elif p[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(p[i])
                i += 1
        return re.compile(out + "(?:/.*)?$")

    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        if to_regex(pattern).match(path):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_what_the_build_copies():
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    kept = [
        "pyproject.toml",
        "README.md",
        "src/nqp/__init__.py",
        "src/nqp/service/app.py",
        "src/nqp/store/migrations/script.py.mako",
        "deploy/docker/entrypoint.sh",
    ]
    dropped = [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        ".nqp/nqp.db",
        "src/nqp/__pycache__/readout._rls_apply-618.py311.nbi",
        "deploy/k8s/secret.example.yaml",
    ]
    for path in kept:
        assert (ROOT / path).exists(), path
        assert not _dockerignore_excluded(patterns, path), f"{path} would be left out"
    for path in dropped:
        assert _dockerignore_excluded(patterns, path), f"{path} would be sent to the daemon"


@pytest.fixture
def fake_nqp(tmp_path: Path) -> Path:
    """A stand-in ``nqp`` on PATH that records its arguments and the cache's content."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "nqp"
    script.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$@" > "$OUT/args"\n'
        'ls -A "$NUMBA_CACHE_DIR" > "$OUT/cache"\n'
        'echo "$$" > "$OUT/pid"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bindir


def _run_entrypoint(tmp_path: Path, bindir: Path, cache: Path, seed: Path, *args: str):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {
        "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "NUMBA_CACHE_DIR": str(cache),
        "NUMBA_CACHE_SEED": str(seed),
        "OUT": str(out),
    }
    with subprocess.Popen(
        ["sh", str(ENTRYPOINT), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        _, stderr = proc.communicate(timeout=20)
    return proc, stderr, out


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_entrypoint_seeds_empty_cache_and_execs_nqp(tmp_path, fake_nqp):
    assert os.access(ENTRYPOINT, os.X_OK), "entrypoint.sh must be executable"
    seed = tmp_path / "seed"
    (seed / "nqp" / "readout").mkdir(parents=True)
    (seed / "nqp" / "readout" / "f.nbi").write_bytes(b"index")
    cache = tmp_path / "cache" / "numba"  # does not exist yet: created by the script
    proc, stderr, out = _run_entrypoint(tmp_path, fake_nqp, cache, seed, "serve", "--port", "8000")
    assert proc.returncode == 0, stderr
    assert (out / "args").read_text().split() == ["serve", "--port", "8000"]
    # exec, not a child process: nqp is PID 1 in the container and receives SIGTERM itself
    assert int((out / "pid").read_text()) == proc.pid
    assert (cache / "nqp" / "readout" / "f.nbi").read_bytes() == b"index"
    assert (out / "cache").read_text().split() == ["nqp"]


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_entrypoint_leaves_a_filled_cache_alone(tmp_path, fake_nqp):
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "stale.nbi").write_bytes(b"old")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fresh.nbi").write_bytes(b"new")
    proc, stderr, out = _run_entrypoint(tmp_path, fake_nqp, cache, seed, "worker")
    assert proc.returncode == 0, stderr
    assert sorted(p.name for p in cache.iterdir()) == ["fresh.nbi"]
    assert (out / "args").read_text().split() == ["worker"]


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_entrypoint_passes_the_exit_status_through(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    failing = bindir / "nqp"
    failing.write_text("#!/bin/sh\nexit 7\n")
    failing.chmod(0o755)
    proc, _, _ = _run_entrypoint(tmp_path, bindir, tmp_path / "c", tmp_path / "no-seed", "migrate")
    assert proc.returncode == 7
