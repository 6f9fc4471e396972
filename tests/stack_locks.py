"""Locks between pytest processes (`make test` runs two xdist workers) over one local stack:
starting it once, and a readers-writer lock so that a test that stops services has the stack
to itself. Writers go first: a waiting writer holds the turnstile, which new readers pass
through, so it is not starved by modules that keep taking the stack in turn."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path

from conf.settings import Settings
from stack.launcher import file_lock


def _locks(settings: Settings) -> Path:
    return Path(settings.runtime_dir) / "locks"


def starting(settings: Settings):
    return file_lock(_locks(settings) / "test-stack-start", fcntl.LOCK_EX)


@contextlib.contextmanager
def sharing(settings: Settings):
    """Held while tests use the stack as it is."""
    with file_lock(_locks(settings) / "test-stack-turnstile", fcntl.LOCK_EX):
        pass
    with file_lock(_locks(settings) / "test-stack-use", fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def alone(settings: Settings):
    """Held while a test stops and restarts services."""
    with file_lock(_locks(settings) / "test-stack-turnstile", fcntl.LOCK_EX), \
            file_lock(_locks(settings) / "test-stack-use", fcntl.LOCK_EX):
        yield
