"""Prints and checks the outcome of the serverless restore drill: the run's status from
`drctl status --format json` on stdin, and what AWS (the emulator) holds now, read with boto3
rather than taken from drctl: the restored table and its items, the backup of the damaged table,
where the function's alias points, the table the functions are configured with, and the one
reconciliation execution. Exits 0 when the run succeeded and everything checked holds.

Usage: drctl status RUN --format json | python3 scripts/drill-outcome-serverless.py ENDPOINT_URL
"""

import os
import sys

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drill_outcome import Outcome  # noqa: E402

url = sys.argv[1]
o = Outcome(url)
kw, s, steps, check = o.aws, o.status, o.steps, o.check
o.rto("health-check", "1h")
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
sys.exit(1 if o.failures else 0)
