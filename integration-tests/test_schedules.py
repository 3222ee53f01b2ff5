"""Schedules end to end: `lamb schedule add|ls|rm`, EventBridge expression
checks, persistence across a restart, and firings of `rate(1 minute)` with
schedule time scaled 60x (a minute a second). Each firing is an async
event with the Scheduled Event shape: the test sees it in the function's
log once the async workers deliver it, or else still in the queue."""

import json
import sqlite3
import time

import pytest

from conftest import BUILD, deploy, function_daemon


pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the runtime trees are not built (make rootfs)",
)

APP = b'''
import json

def handler(event, context):
    print("EVENT " + json.dumps(event))
    return "ok"
'''


@pytest.fixture(scope="module")
def daemon():
    with function_daemon("lamb-sched-", "--schedule-time-scale", "60") as d:
        yield d


@pytest.fixture(scope="module")
def lam(daemon):
    return daemon.lambda_client()


def logged_events(daemon, name):
    out = []
    for f in sorted((daemon.data_dir / "logs" / name).glob("*")):
        for line in f.read_text(errors="replace").splitlines():
            if "EVENT " in line:
                out.append(json.loads(line.split("EVENT ", 1)[1]))
    return out


def queued_events(daemon, name):
    db = sqlite3.connect(f"file:{daemon.data_dir / 'lamb.db'}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT payload FROM async_events WHERE function = ?", (name,)).fetchall()
    finally:
        db.close()
    return [json.loads(bytes(r[0])) for r in rows]


def test_add_list_remove(daemon, lam):
    deploy(lam, "s-cli", {"app.py": APP})
    out = daemon.lamb("schedule", "add", "s-cli", "cron(0 12 ? * MON-FRI *)")
    assert "s-cli" in out.stdout
    ls = json.loads(daemon.lamb("--json", "schedule", "ls").stdout)["Schedules"]
    [s] = [s for s in ls if s["Name"] == "s-cli"]
    assert s["Expression"] == "cron(0 12 ? * MON-FRI *)" and s["FunctionName"] == "s-cli"
    assert s["RuleArn"].endswith(":rule/s-cli")
    for bad in ["rate(1 minutes)", "cron(0 0 * * * *)", "cron(0 0 15W * ? *)", "every day"]:
        p = daemon.lamb("schedule", "add", "s-cli", bad, "--name", "bad", check=False)
        assert p.returncode != 0 and "InvalidParameterValue" in p.stderr + p.stdout, bad
    p = daemon.lamb("schedule", "add", "nosuch", "rate(5 minutes)", check=False)
    assert p.returncode != 0
    daemon.restart()
    ls = json.loads(daemon.lamb("--json", "schedule", "ls").stdout)["Schedules"]
    assert [s["Name"] for s in ls] == ["s-cli"]
    daemon.lamb("schedule", "rm", "s-cli")
    assert json.loads(daemon.lamb("--json", "schedule", "ls").stdout)["Schedules"] == []
    assert daemon.lamb("schedule", "rm", "s-cli", check=False).returncode != 0


def test_rate_fires_scheduled_events(daemon, lam):
    deploy(lam, "s-tick", {"app.py": APP})
    daemon.lamb("schedule", "add", "s-tick", "rate(1 minute)", "--name", "tick")
    # One minute of schedule time is one second here.
    deadline = time.time() + 30
    events = []
    while time.time() < deadline:
        # An event being delivered may be in the log and the queue at once.
        by_id = {e["id"]: e for e in logged_events(daemon, "s-tick") + queued_events(daemon, "s-tick")}
        events = sorted(by_id.values(), key=lambda e: e["time"])
        if len(events) >= 2:
            break
        time.sleep(0.5)
    daemon.lamb("schedule", "rm", "tick")
    assert len(events) >= 2, (daemon.log.read_text()[-3000:])
    e = events[0]
    assert e["detail-type"] == "Scheduled Event" and e["source"] == "aws.events"
    assert e["version"] == "0" and e["detail"] == {} and e["region"] == "us-east-1"
    assert e["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/tick"]
    assert e["time"].endswith("Z") and e["account"] == "000000000000"
    assert events[0]["time"] < events[1]["time"]
