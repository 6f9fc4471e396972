"""The streaming job with a crash point, for the kill tests:

    spark-submit tests/crashing_job.py --crash-after bronze|audit|gold JOB-ARGS...

kills its own driver with SIGKILL right after that commit of the first batch it processes:
a crash between two commits, at a chosen place."""

from __future__ import annotations

import os
import signal
import sys

from jobs.attribution_streaming_job import parse_args, run

CRASH_LINE = "crash point: killing the driver after the {} commit"


def main(argv: list[str]) -> int:
    at = argv.index("--crash-after")
    phase, job_args = argv[at + 1], argv[:at] + argv[at + 2:]

    def crash(done: str) -> None:
        if done == phase:
            print(CRASH_LINE.format(phase), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    run(parse_args(job_args), after_phase=crash)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
