"""What the drill-outcome scripts share: the run's status read from `drctl status --format json`
on stdin, the checks of what AWS (the emulator) holds, printed one a line, and the run's RTO
and RPO against its objectives."""

import json
import sys
from datetime import datetime


class Outcome:
    """A drill's run as `drctl status` shows it, and the checks made of it."""

    def __init__(self, url):
        self.aws = dict(endpoint_url=url, region_name="us-west-2",
                        aws_access_key_id="drill", aws_secret_access_key="drill")
        self.status = json.load(sys.stdin)
        self.steps = {x["id"]: x for x in self.status["steps"]}
        self.failures = []
        print(f"run {self.status['run_id']}: {self.status['status']}")

    def check(self, what, ok, seen):
        """Prints one check and its finding; a failed one is counted."""
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {seen}")
        if not ok:
            self.failures.append(what)

    def rto(self, recovered_step, objective):
        """Prints the RTO: from the run's start to `recovered_step`'s end."""
        recovered = self.steps[recovered_step]
        if recovered["finished_at"]:
            rto = (when(recovered["finished_at"]) - when(self.status["started_at"])).total_seconds()
            print(f"  RTO achieved: {rto:.1f}s against an objective of {objective} (the approval wait included)")
        else:
            print("  RTO: service not recovered")


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
