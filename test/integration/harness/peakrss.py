"""Run a command and print its peak RSS in KiB on the last line of stderr.

Usage: python3 -m harness.peakrss CMD [ARGS...]

The command is forked from this small interpreter, not from the test process: on
Linux a child's ru_maxrss includes the memory its parent had when it forked, so
measuring a child of a large pytest process would report pytest's size.
"""

import os
import sys


def main() -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    sys.stderr.write(f"\npeak_rss_kib={usage.ru_maxrss}\n")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
