"""One streaming job per checkpoint. Two jobs on one checkpoint would interleave their
offset and commit logs; Spark refuses that inside one session only. The lock is an OS
file lock (flock) on a file named after the checkpoint, holding its owner: the kernel
drops it when the owner dies, however it dies, so a lock left by a crashed or killed job
is stale by construction and is taken over. The lock file lives on this machine (under
RUNTIME_DIR/locks): it guards jobs started on one host.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path


def normalised(checkpoint: str) -> str:
    """A local checkpoint as an absolute path (two spellings, one lock); a URI without its
    trailing slashes (s3a://b/c/ and s3a://b/c are one checkpoint)."""
    return checkpoint.rstrip("/") if "://" in checkpoint else str(Path(checkpoint).resolve())


class CheckpointLock:
    def __init__(self, checkpoint: str, lock_dir: str | Path) -> None:
        self.checkpoint = normalised(checkpoint)
        digest = hashlib.sha1(self.checkpoint.encode()).hexdigest()[:16]
        self.path = Path(lock_dir) / f"checkpoint-{digest}.lock"
        self.handle = None

    def acquire(self) -> str | None:
        """Take the lock; returns a note when a stale lock was taken over. SystemExit, naming
        the owner and the fix, when another live job holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the life of the job
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = self._owner(handle)
            handle.close()
            raise SystemExit(
                f"error: checkpoint {self.checkpoint} is in use by another attribution job "
                f"(pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {owner.get('started', '?')}); "
                f"stop that job (kill {owner.get('pid', '<pid>')}); a second pipeline needs tables of its own "
                "(--table-prefix), not only another --checkpoint (engine/writer_lease.py)") from None
        previous = self._owner(handle)
        handle.seek(0)
        handle.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "checkpoint": self.checkpoint,
                   "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "command": " ".join(sys.argv)}, handle)
        handle.flush()
        self.handle = handle
        if previous.get("pid"):
            return (f"checkpoint lock: taken over from pid {previous['pid']} on {previous.get('host', '?')} "
                    "(no longer running)")
        return None

    def release(self) -> None:
        if self.handle is not None:
            self.handle.seek(0)
            self.handle.truncate()
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    @staticmethod
    def _owner(handle) -> dict:
        handle.seek(0)
        try:
            return json.loads(handle.read() or "{}")
        except ValueError:
            return {}
