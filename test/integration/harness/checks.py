"""Small assertions shared by the test files."""

from __future__ import annotations


def assert_ok(p, tail: int = 4000):
    """``p`` (a CompletedProcess of the binary) exited 0; otherwise the assertion shows
    its exit status and the end of its output."""
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout[-tail:]}\nstderr:\n{p.stderr[-tail:]}"
