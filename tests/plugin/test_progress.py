"""The embedding progress bar: shown in a terminal, silent when output is not a TTY, under `-q`, with
`--facebench-no-progress`, and on xdist workers. Runs pytest in a pseudo-terminal."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys

import pytest

pty = pytest.importorskip("pty")
fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")

BAR = re.compile(r"pixels:\s+\d+%\|.*\|\s*\d+/12 ")  # tqdm: "pixels:  50%|█████     | 6/12 [00:00<…, 9.1img/s]"


def run_in_terminal(bench, *args: str) -> str:
    """pytest in a fresh interpreter whose stdin, stdout and stderr are a 120-column pseudo-terminal."""
    cmd = [sys.executable, "-m", "pytest", *[a for a in bench.args() if a != "--facebench-no-progress"], *args]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        cmd, cwd=bench.path, stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "COLUMNS": "120"}
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=300) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
def one_cell(bench):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    return bench


def test_a_terminal_run_shows_a_bar_per_embedding_job(one_cell) -> None:
    output = run_in_terminal(one_cell)
    assert BAR.search(output), output[-2000:]
    assert "img/s" in output


@pytest.mark.parametrize(
    "args", [("-q",), ("--facebench-no-progress",), ("-n", "2")], ids=["quiet", "no-progress", "xdist-workers"]
)
def test_no_bar_when_asked_or_on_workers(one_cell, args) -> None:
    output = run_in_terminal(one_cell, *args)
    assert "1 passed" in output
    assert not BAR.search(output) and "img/s" not in output


def test_no_bar_when_the_output_is_not_a_terminal(one_cell) -> None:
    result = one_cell.pytester.runpytest_subprocess(
        *[a for a in one_cell.args() if a != "--facebench-no-progress"], timeout=300
    )
    result.assert_outcomes(passed=1)
    text = result.stdout.str() + result.stderr.str()
    assert not BAR.search(text) and "img/s" not in text
