"""The systemd units of deploy/systemd/ load without errors (``systemd-analyze verify``) and all
run mediastore the same way: as its own user, from /opt/mediastore, with the environment file and
the same hardening.

``systemd-analyze verify`` works without systemd running (Debian's ``systemd`` package provides it;
.ci/run installs it), but it refuses a unit whose ExecStart program does not exist. The units name
the installed paths (/opt/mediastore, its .venv), which exist on a production host and not here; so
the test verifies copies in a temp directory with /opt/mediastore rewritten to this checkout and
its virtualenv's python to the one running the tests. Nothing else in them is changed.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO
from tests.support.servers import skip_or_fail

UNITS = REPO / "deploy" / "systemd"
INSTALLED = "/opt/mediastore"
ENV_FILE = "/etc/mediastore/mediastore.env"
# Scheduled jobs: timer name -> the manage.py command line its service runs.
JOBS = {
    "prune-events": "prune_events",
    "collect-orphans": "collect_orphans --delete",
    "verify": "verify --older-than 30d",
    "purge-tokens": "purge_tokens",
    "expire-tus-uploads": "expire_tus_uploads",
    "probe-stores": "probe_stores",
    "expire": "expire",
    "purge-trash": "purge_trash",
    "run-admin-jobs": "run_admin_jobs",
}
# Jobs that run every few minutes rather than on a calendar day.
FREQUENT = {"probe-stores", "expire", "run-admin-jobs"}


def unit_files() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in {".service", ".timer"})


def parse(path: Path) -> configparser.ConfigParser:
    """A unit as sections of options; repeated options (Environment=) are kept, newline-joined."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, dict_type=_MultiDict)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return parser


class _MultiDict(dict):
    def __setitem__(self, key, value):
        if key in self and isinstance(value, list) and isinstance(self[key], list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def service(path: Path) -> dict[str, str]:
    return dict(parse(path)["Service"])


def hardening(options: dict[str, str]) -> dict[str, str]:
    names = (
        "ProtectSystem",
        "ReadWritePaths",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "NoNewPrivileges",
        "CapabilityBoundingSet",
        "RestrictSUIDSGID",
        "SystemCallFilter",
        "StateDirectory",
        "User",
        "Group",
        "WorkingDirectory",
        "EnvironmentFile",
    )
    return {name: options.get(name) for name in names}


def test_the_units_expected_are_there():
    names = {p.name for p in unit_files()}
    assert {
        "mediastore.service",
        "mediastore-relay.service",
        "mediastore-replicate.service",
        "mediastore-webhooks.service",
    } <= names
    for job in JOBS:
        assert {f"mediastore-{job}.service", f"mediastore-{job}.timer"} <= names


def test_api_unit_runs_bin_start_hardened_and_restarts_on_failure():
    options = service(UNITS / "mediastore.service")
    assert options["ExecStart"] == f"{INSTALLED}/bin/start"
    assert options["Type"] == "notify"  # gunicorn's sd_notify: start returns once it listens
    assert options["Restart"] == "on-failure"
    assert options["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert options["User"] == "mediastore" and options["User"] != "root"
    assert options["EnvironmentFile"] == ENV_FILE
    assert f"MEDIASTORE_ENV_FILE={ENV_FILE}" in options["Environment"]
    assert f"PATH={INSTALLED}/.venv/bin:" in options["Environment"]
    assert options["ProtectSystem"] == "strict"
    assert "/var/lib/mediastore" in options["ReadWritePaths"].split()
    for flag in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert options[flag] == "yes", flag


@pytest.mark.parametrize("job,command", JOBS.items())
def test_each_job_has_a_timer_and_a_oneshot_service_running_its_command(job, command):
    options = service(UNITS / f"mediastore-{job}.service")
    assert options["Type"] == "oneshot"
    assert options["ExecStart"] == f"{INSTALLED}/.venv/bin/python {INSTALLED}/manage.py {command}"
    timer = parse(UNITS / f"mediastore-{job}.timer")
    if job in FREQUENT:
        assert timer["Timer"]["OnUnitActiveSec"] and timer["Timer"]["OnBootSec"]
    else:
        assert timer["Timer"]["OnCalendar"] in {"hourly", "daily", "weekly"}
        assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_every_service_runs_as_the_api_does():
    """Same user, directory, environment and hardening everywhere: a job must see the data
    directory and database the API sees, and be confined just as much."""
    expected = hardening(service(UNITS / "mediastore.service"))
    assert None not in expected.values(), expected
    for path in unit_files():
        if path.suffix == ".service":
            assert hardening(service(path)) == expected, path.name


def test_relay_unit_runs_relay_events_and_restarts():
    options = service(UNITS / "mediastore-relay.service")
    assert options["ExecStart"] == f"{INSTALLED}/.venv/bin/python {INSTALLED}/manage.py relay_events"
    assert options["Restart"] == "on-failure"


def test_systemd_analyze_verify_passes(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        skip_or_fail("systemd-analyze is not on PATH (apt-get install systemd)")
    python = Path(sys.executable)
    for path in unit_files():
        text = path.read_text()
        assert INSTALLED in text or path.suffix == ".timer", path.name
        text = text.replace(f"{INSTALLED}/.venv/bin/python", str(python)).replace(INSTALLED, str(REPO))
        (tmp_path / path.name).write_text(text)
    copies = sorted(str(p) for p in tmp_path.iterdir())
    # --man=no: do not look up man: documentation links; timers find their services beside them.
    done = subprocess.run(
        [analyze, "verify", "--man=no", *copies], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not output, output


def test_replicate_unit_runs_the_replication_worker_and_restarts():
    options = service(UNITS / "mediastore-replicate.service")
    assert options["ExecStart"] == f"{INSTALLED}/.venv/bin/python {INSTALLED}/manage.py replicate"
    assert options["Restart"] == "on-failure"


def test_webhooks_unit_runs_the_webhook_worker_and_restarts():
    options = service(UNITS / "mediastore-webhooks.service")
    assert options["ExecStart"] == f"{INSTALLED}/.venv/bin/python {INSTALLED}/manage.py deliver_webhooks"
    assert options["Restart"] == "on-failure"
