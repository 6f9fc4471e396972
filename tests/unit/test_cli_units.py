"""The same option means the same unit in every job: --every is seconds in the rollup job and
the maintenance job alike (and in the compose profile that runs them)."""

import pytest
import yaml

from conf.settings import REPO_ROOT
from jobs import maintenance_job, rollup_job


@pytest.mark.parametrize("job", [rollup_job, maintenance_job])
def test_every_is_in_seconds(job, capsys):
    with pytest.raises(SystemExit):
        job.main(["--help"]) if job is rollup_job else job.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--every EVERY seconds between" in help_text and "minutes" not in help_text


def test_the_compose_schedules_read_as_seconds():
    services = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text())["services"]
    every = {name: int(s["command"][s["command"].index("--every") + 1]) for name, s in services.items()
             if "--every" in (s.get("command") or [])}
    assert every == {"rollups": 60, "maintenance": 3600}  # a minute and an hour
