"""Running the command-line scripts as a user does, for the bad-input tests (tests/test_bad_inputs*.py).

    result = run_cli("src.train", "--config", config_path("GRUCell"), "--set", "train.epochs=0", cwd=workdir)
    assert_one_line_error(result, "train.epochs")

Each call is a fresh ``python -m <module>`` subprocess with the repository on PYTHONPATH, in the
working folder ``cwd`` (a temporary folder: the relative defaults ``models/``, ``data/``,
``results/``, ``imgs/`` and ``tboard_logs/`` then land there, never in the repository), and
with TORCH_HOME and the pretrained-weights mirror pointed at nothing, so that nothing is fetched.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the progress bars tqdm draws on stderr: a carriage return, or 'desc: 40%|####  | 2/5 [...]'
_PROGRESS = re.compile(r"\r|\d+%\|")


def config_path(experiment: str) -> str:
    """The absolute path of ``configs/<experiment>.yaml`` (the subprocess runs elsewhere)."""
    return str(REPO / "configs" / f"{experiment}.yaml")


def run_cli(module: str, *args: str, cwd: str | Path, env: dict | None = None, timeout: float = 300,
            stdin: str | None = None, preexec_fn=None) -> subprocess.CompletedProcess:
    """``python -m module args...`` in ``cwd``; returns the finished process (text stdout and stderr).
    ``preexec_fn`` runs in the child before python starts, e.g. to set a resource limit."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=_cli_env(cwd, env),
                          text=True, capture_output=True, timeout=timeout, input=stdin, preexec_fn=preexec_fn)


def start_cli(module: str, *args: str, cwd: str | Path, env: dict | None = None) -> subprocess.Popen:
    """:func:`run_cli` without waiting: the running process (text stdout and stderr as pipes). Its SIGINT
    is the default one, as in a terminal, so Ctrl-C (``send_signal(SIGINT)``) interrupts it even when
    the tests themselves run where SIGINT is ignored (started in the background by ``nohup ... &``,
    whose children inherit the ignored signal, and Python then never raises KeyboardInterrupt)."""
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=_cli_env(cwd, env),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _cli_env(cwd: str | Path, env: dict | None) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "TORCH_HOME": str(Path(cwd) / ".torch_home"),
            "PRETRAINED_BASE_URL": "http://127.0.0.1:1", "OMP_NUM_THREADS": "1", **(env or {})}


def message_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not progress bars or blank."""
    return [line for line in stderr.splitlines() if line.strip() and not _PROGRESS.search(line)]


def assert_one_line_error(result: subprocess.CompletedProcess, *names: str, only_line: bool = True,
                          code: int | None = None) -> str:
    """The command failed (exit ``code``, default any non-zero) with one error line on stderr
    (``error: ...``, or argparse's ``prog: error: ...``) that contains every one of ``names`` (a key, a
    value, a file), and no traceback. ``only_line``: nothing else is on stderr but progress bars and
    argparse's usage lines (the error came before any work started). Returns the error line."""
    lines = message_lines(result.stderr)
    assert result.returncode != 0, f"exit 0; stderr:\n{result.stderr}"
    if code is not None:
        assert result.returncode == code, f"exit {result.returncode}, expected {code}; stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in lines if line.startswith("error:") or ": error:" in line]
    assert len(errors) == 1, f"expected one error line, got {len(errors)}:\n{result.stderr}"
    if only_line:
        others = [line for line in lines if line not in errors and not _is_usage(line)]
        assert not others, f"expected the error line alone on stderr, got:\n{result.stderr}"
    for name in names:
        assert str(name) in errors[0], f"{name!r} not in the error line: {errors[0]}"
    return errors[0]


def _is_usage(line: str) -> bool:
    """argparse's usage block: 'usage: ...' and its indented continuation lines."""
    return line.startswith("usage:") or line.startswith(" ")


def snapshot(*roots: str | Path) -> dict[str, str]:
    """``{path: sha1 of its bytes}`` of every file under ``roots`` (missing roots count as empty)."""
    digests = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for path in files:
            digests[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
    return digests


def wait_for(pattern: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until a file matching ``pattern`` (a path, or a glob in its last part) exists; fails if ``process``
    ends first."""
    deadline = time.monotonic() + timeout
    while not list(pattern.parent.glob(pattern.name)):
        assert process.poll() is None, f"the run ended first:\n{process.communicate()[1]}"
        assert time.monotonic() < deadline, f"no {pattern} after {timeout} s"
        time.sleep(0.02)
