"""The scheduling recipes in examples/ (crontab, systemd service and timer, a CI
workflow): each is well formed and calls a cmosynth command that the CLI accepts, on a
topic file that exists."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import yaml

from cmosynth.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def cmosynth_commands(text: str) -> list[list[str]]:
    """Every `cmosynth ...` invocation in a shell text, as argv after `cmosynth`."""
    found = []
    for match in re.finditer(r"(?<![\"'\w])(?:[\w./-]*/)?cmosynth\s+([^;&|>\n\"']+)", text):
        found.append(shlex.split(match.group(1)))
    return found


def assert_runs_an_existing_topic(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.command in {"update", "run"}
    assert (REPO / args.topic).exists(), args.topic


def test_the_crontab_line_has_five_time_fields_and_a_valid_update():
    lines = [line for line in (EXAMPLES / "crontab").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert all(re.fullmatch(r"[\d*/,-]+", field) for field in fields[:5])
    (argv,) = cmosynth_commands(fields[5])
    assert argv[0] == "update" and "--wait" in argv
    assert_runs_an_existing_topic(argv)


def test_the_systemd_service_and_timer_are_well_formed():
    service = configparser.ConfigParser(strict=True)
    service.read(EXAMPLES / "cmosynth-update.service")
    assert service["Service"]["Type"] == "oneshot"
    (argv,) = cmosynth_commands(service["Service"]["ExecStart"])
    assert_runs_an_existing_topic(argv)
    timer = configparser.ConfigParser(strict=True)
    timer.read(EXAMPLES / "cmosynth-update.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_the_ci_workflow_updates_on_a_schedule_and_keeps_the_outputs():
    workflow = yaml.safe_load((EXAMPLES / "github-actions" / "update-review.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads on: as True
    assert triggers["schedule"][0]["cron"].count(" ") == 4
    steps = workflow["jobs"]["update"]["steps"]
    commands = [argv for step in steps for argv in cmosynth_commands(step.get("run", ""))]
    assert {argv[0] for argv in commands} == {"update", "run"}
    for argv in commands:
        assert_runs_an_existing_topic(argv)
    assert any("git push" in step.get("run", "") for step in steps)
    assert workflow["concurrency"]
