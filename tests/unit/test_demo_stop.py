"""`make demo` stopped by Ctrl-C while a history step runs: Spark's context has taken SIGINT
over then (it raises KeyboardInterrupt), and the demo still ends with a line, not a traceback,
with its own signal handlers given back."""

from __future__ import annotations

import signal

from jobs import demo


def test_an_interrupt_during_the_history_ends_with_a_line_and_status_130(monkeypatch, capsys):
    import stack.preflight

    monkeypatch.setattr(stack.preflight, "require", lambda *_: None)

    def history(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run", history)
    before = signal.getsignal(signal.SIGINT)
    assert demo.main([]) == 130
    assert "interrupted: what the demo started is stopped, the tables are kept" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before
