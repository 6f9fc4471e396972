"""`make test` runs two pytest-xdist workers and relies on `--dist loadgroup` keeping a
group's tests on one worker (tests/conftest.py): a module's fixture, such as the kill
scenario, must run once. pytest 9.2 silently broke that (docs/versions.md)."""

from __future__ import annotations

import subprocess
import sys

MODULE = '''
import os
import pytest

pytestmark = pytest.mark.xdist_group("together")

@pytest.mark.parametrize("n", range(4))
def test_note_worker(n, tmp_path_factory):
    root = tmp_path_factory.getbasetemp().parent
    (root / f"{__name__}-{n}").write_text(os.environ["PYTEST_XDIST_WORKER"])
'''


def test_a_group_stays_on_one_worker(tmp_path):
    for name in ("test_a.py", "test_b.py"):
        (tmp_path / name).write_text(MODULE)
    base = tmp_path / "base"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p",
                             "no:cacheprovider", "--basetemp", str(base), str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    workers = {path.read_text() for path in base.iterdir() if path.name.startswith("test_")}
    assert len(list(base.glob("test_*"))) == 8 and len(workers) == 1, workers
