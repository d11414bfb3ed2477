"""Small assertions shared by the test files."""

from __future__ import annotations


def assert_ok(p, tail: int = 4000):
    """``p`` (a CompletedProcess of the binary) exited 0; otherwise the assertion shows
    its exit status and the end of its output."""
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout[-tail:]}\nstderr:\n{p.stderr[-tail:]}"


def run_on_terminal(cmd, env, timeout: float = 60):
    """Runs ``cmd`` with its stderr on a pseudo-terminal (stdout piped, stdin empty) and
    returns (exit status, what it wrote to the terminal, decoded)."""
    import os
    import pty
    import subprocess

    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO once the child closed its side
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=timeout)
    os.close(master)
    return p.returncode, out.decode(errors="replace")
