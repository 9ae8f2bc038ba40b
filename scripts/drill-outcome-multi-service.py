"""Prints and checks the outcome of the multi-service failover drill: the run's status from
`drctl status --format json` on stdin, and what AWS (the emulator) holds now, read with boto3
rather than taken from drctl: the services' task counts, the promoted database, the published
endpoint, where the public name points, and the page the emergency team received.
Exits 0 when the run succeeded and everything checked holds.

Usage: drctl status RUN --format json | python3 scripts/drill-outcome-multi-service.py ENDPOINT_URL QUEUE_URL
"""

import json
import os
import sys

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drill_outcome import Outcome  # noqa: E402

url, queue = sys.argv[1], sys.argv[2]
o = Outcome(url)
kw, s, steps, check = o.aws, o.status, o.steps, o.check
o.rto("health", "1h")
print(f"  RPO achieved: {steps['replica-lag']['outputs'].get('rpo_seconds')}s against an objective of 1h")

print("what AWS holds now:")
ecs = boto3.client("ecs", **kw)
for service, count in [("auth", 6), ("task-service", 8)]:
    svc = ecs.describe_services(cluster="tasks-usw2", services=[service])["services"][0]
    check(f"ECS {service} runs {count} tasks", (svc["desiredCount"], svc["runningCount"]) == (count, count),
          f"desired {svc['desiredCount']}, running {svc['runningCount']}")
db = boto3.client("rds", **kw).describe_db_instances(DBInstanceIdentifier="tasks-db-replica-usw2")["DBInstances"][0]
check("the replica is a standalone primary", "ReadReplicaSourceDBInstanceIdentifier" not in db,
      db.get("ReadReplicaSourceDBInstanceIdentifier", "no replication source"))
endpoint = boto3.client("ssm", **kw).get_parameter(Name="/tasks/prod/db-endpoint")["Parameter"]
check("the services' configuration names the promoted database", endpoint["Value"] == db["Endpoint"]["Address"],
      f"{endpoint['Value']} (version {endpoint['Version']})")
r53 = boto3.client("route53", **kw)
zone = next(z["Id"] for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == "tasks.example.com.")
record = next(r for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
              if r["Name"] == "api.tasks.example.com.")
value = record["ResourceRecords"][0]["Value"]
check("api.tasks.example.com points at the standby load balancer", ".us-west-2." in value, value)
sqs = boto3.client("sqs", **kw)
pages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
subjects = [json.loads(m["Body"]).get("Subject") for m in pages]
check("the emergency team was paged once", subjects == ["tasks failed over to us-west-2"], subjects)

journal = s["journal"]
print(f"  journal: {journal['entries']} entries, hash chain {'intact' if journal['intact'] else 'BROKEN'}")
sys.exit(0 if s["status"] == "succeeded" and not o.failures and journal["intact"] else 4)
