"""Prints and checks the outcome of the serverless restore drill: the run's status from
`drctl status --format json` on stdin, and what AWS (the emulator) holds now, read with boto3
rather than taken from drctl: the restored table and its items, the backup of the damaged table,
where the function's alias points, the table the functions are configured with, and the one
reconciliation execution. Exits 0 when the run succeeded and everything checked holds.

Usage: drctl status RUN --format json | python3 scripts/drill-outcome-serverless.py ENDPOINT_URL
"""

import json
import sys
from datetime import datetime

import boto3

url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-west-2", aws_access_key_id="drill", aws_secret_access_key="drill")
s = json.load(sys.stdin)
steps = {x["id"]: x for x in s["steps"]}
failures = []


def check(what, ok, seen):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}: {seen}")
    if not ok:
        failures.append(what)


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


print(f"run {s['run_id']}: {s['status']}")
recovered = steps["health-check"]
if recovered["finished_at"]:
    rto = (when(recovered["finished_at"]) - when(s["started_at"])).total_seconds()
    print(f"  RTO achieved: {rto:.1f}s against an objective of 1h (the approval wait included)")
restore = steps["restore"]["outputs"]
print(f"  RPO achieved: {restore.get('rpo_seconds')}s against an objective of 15m "
      f"(restored to {restore.get('restore_time')})")

print("what AWS holds now:")
ddb = boto3.client("dynamodb", **kw)
table = ddb.describe_table(TableName="tasks-restored")["Table"]
count = ddb.scan(TableName="tasks-restored", Select="COUNT")["Count"]
check("tasks-restored is ACTIVE with the tasks restored", table["TableStatus"] == "ACTIVE" and count == 25,
      f"{table['TableStatus']}, {count} items, restored to {table['RestoreSummary']['RestoreDateTime']}")
backups = [b["BackupName"] for b in ddb.list_backups(TableName="tasks")["BackupSummaries"]]
check("the damaged table was backed up first", backups == ["tasks-damaged"], backups)
alias = boto3.client("lambda", **kw).get_alias(FunctionName="tasks-api", Name="live")["FunctionVersion"]
check("the live alias serves the last good version", alias == "1", f"version {alias}")
table_name = boto3.client("ssm", **kw).get_parameter(Name="/tasks/prod/table")["Parameter"]["Value"]
check("the functions are configured with the restored table", table_name == "tasks-restored", table_name)
sfn = boto3.client("stepfunctions", **kw)
machine = "arn:aws:states:us-west-2:123456789012:stateMachine:tasks-reconcile"
runs = sfn.list_executions(stateMachineArn=machine)["executions"]
check("the reconciliation ran once and succeeded", [e["status"] for e in runs] == ["SUCCEEDED"],
      ", ".join(f"{e['name']} {e['status']}" for e in runs))
check("the run succeeded", s["status"] == "succeeded", s["status"])
sys.exit(1 if failures else 0)
