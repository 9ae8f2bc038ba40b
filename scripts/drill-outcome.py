"""Prints the outcome of a regional-failover drill from `drctl status --format json` on stdin:
status, achieved RTO and RPO against the objectives, where DNS points, the journal's state.
Exits 0 when the run succeeded."""

import json
import sys
from datetime import datetime


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


s = json.load(sys.stdin)
steps = {x["id"]: x for x in s["steps"]}
recovered = steps["smoke-test"]
print(f"run {s['run_id']}: {s['status']}")
if recovered["finished_at"]:
    rto = (when(recovered["finished_at"]) - when(s["started_at"])).total_seconds()
    print(f"  RTO achieved: {rto:.1f}s against an objective of 15m (the approval wait included)")
else:
    print("  RTO: service not recovered")
print(f"  RPO achieved: {steps['replica-lag']['outputs'].get('rpo_seconds')}s against an objective of 1m (replica lag when the failover was decided)")
print(f"  database record now points at: {steps['promote']['outputs'].get('endpoint')}")
journal = s["journal"]
print(f"  journal: {journal['entries']} entries, hash chain {'intact' if journal['intact'] else 'BROKEN'}")
sys.exit(0 if s["status"] == "succeeded" else 4)
