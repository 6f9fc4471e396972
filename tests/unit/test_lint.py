"""Pyflakes' rules over every Python file: an undefined name in a code path no fast test
reaches (a probe renamed in one module, still called in another) fails here in seconds
instead of in the layer that starts the services."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_undefined_names_or_unused_imports():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "--no-cache", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
