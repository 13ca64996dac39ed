"""Start measured commands from a small process; stdlib only, on purpose.

Linux carries a process's peak RSS (ru_maxrss) across fork and exec, so a child
forked from the benchmark's parent, which holds arrays for generation and checks,
would report at least the parent's size. Children forked from this process start
from its ~10 MB instead.

Protocol: one JSON line per command on stdin, ``{"command", "stdout", "stderr"}``
(file paths for the output); one JSON line back with ``returncode``, ``wall_s``,
``cpu_s`` (user + system, all threads) and ``peak_rss_mb`` of that child alone.
"""

import json
import os
import subprocess
import sys
import time


def main() -> None:
    for line in sys.stdin:
        job = json.loads(line)
        with open(job["stdout"], "wb") as out, open(job["stderr"], "wb") as err:
            start = time.perf_counter()
            child = subprocess.Popen(job["command"], stdout=out, stderr=err)
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
        record = {
            "returncode": os.waitstatus_to_exitcode(status),
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
