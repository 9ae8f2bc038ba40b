"""Starts moto's AWS-API emulator on loopback for drctl's tests and local drill.

Usage: python3 tests/support/moto_server.py PORT

Fidelity fixes, where moto 5 differs from AWS in what drctl reads; nothing else is changed:

- RDS: moto keeps ReadReplicaSourceDBInstanceIdentifier on an instance after
  promote_read_replica, where RDS removes it (a promoted replica is a standalone primary).
  drctl reads exactly that field to know that a promotion happened.
- ECS: moto has no scheduler. It creates a service with none of its tasks running and never
  starts them, and UpdateService sets the running count to the new desired count inside the
  call, while the deployment keeps the counts and rollout state it was created with. In ECS a
  service that has been up runs its desired count, and after UpdateService the scheduler
  starts (or stops) tasks over the following seconds, the PRIMARY deployment reporting its
  counts and IN_PROGRESS until it is COMPLETED. Here a new service runs its tasks, and after
  UpdateService each DescribeServices finds up to two more tasks started (or stopped), so a
  wait for a steady service polls as it does against ECS.
- SNS: moto never counts a topic's subscriptions (GetTopicAttributes always answers 0
  confirmed), though it creates them confirmed. SNS counts them: SubscriptionsConfirmed here is
  the number of the topic's subscriptions that are not pending confirmation.
- CloudWatch: moto's GetMetricStatistics returns every datapoint whose dimensions include the
  ones asked for; CloudWatch keys a metric by its whole set of dimensions, and answers only
  the datapoints published with exactly the dimensions asked for (a ReplicationLatency
  published per TableName and ReceivingRegion is not found by TableName alone). drctl's lag
  readings must name the metric's whole set, so here too only an exact match counts.
"""

import sys
import threading

from moto.cloudwatch import models as cloudwatch
from moto.core.utils import utcnow
from moto.ecs import models as ecs
from moto.rds import models
from moto.server import main
from moto.sns import models as sns

_promote = models.RDSBackend.promote_read_replica


def promote_read_replica(self, db_kwargs):
    database = self.databases[db_kwargs["db_instance_identifier"]]
    source_id = database.source_db_instance_identifier
    result = _promote(self, db_kwargs)
    if source_id:
        source = self.databases.get(source_id)
        if source is not None and database.db_instance_identifier in source.replicas:
            source.remove_replica(database)
        database.source_db_instance_identifier = None
    return result


models.RDSBackend.promote_read_replica = promote_read_replica

# How many tasks the stand-in scheduler starts or stops between two DescribeServices.
TASKS_PER_STEP = 2


def _report(service):
    """The PRIMARY deployment reports the service's counts, as ECS's does."""
    done = service.running_count == service.desired_count
    for deployment in service.deployments:
        if deployment.get("status") == "PRIMARY":
            deployment["desiredCount"] = service.desired_count
            deployment["runningCount"] = service.running_count
            deployment["pendingCount"] = service.pending_count
            deployment["rolloutState"] = "COMPLETED" if done else "IN_PROGRESS"
            deployment["rolloutStateReason"] = (
                f"ECS deployment {deployment['id']} {'completed' if done else 'in progress'}."
            )
            deployment["updatedAt"] = utcnow()


_service_init = ecs.Service.__init__


def service_init(self, *args, **kwargs):
    _service_init(self, *args, **kwargs)
    self.running_count = self.desired_count
    self.pending_count = 0
    _report(self)


ecs.Service.__init__ = service_init

_update_service = ecs.EC2ContainerServiceBackend.update_service


def update_service(self, service_properties):
    cluster = service_properties.get("cluster", "default")
    name = service_properties["service"].split("/")[-1]
    running = self._get_service(cluster, name).running_count
    service = _update_service(self, service_properties)
    service.running_count = running
    service.pending_count = max(service.desired_count - running, 0)
    _report(service)
    return service


ecs.EC2ContainerServiceBackend.update_service = update_service

_describe_services = ecs.EC2ContainerServiceBackend.describe_services


def describe_services(self, cluster_str, service_names_or_arns):
    services, failures = _describe_services(self, cluster_str, service_names_or_arns)
    for service in services:
        gap = service.desired_count - service.running_count
        step = max(-TASKS_PER_STEP, min(TASKS_PER_STEP, gap))
        service.running_count += step
        service.pending_count = max(service.desired_count - service.running_count, 0)
        _report(service)
    return services, failures


ecs.EC2ContainerServiceBackend.describe_services = describe_services



def _confirmed(topic):
    return sum(
        1
        for subscription in topic.sns_backend.subscriptions.values()
        if subscription.topic.arn == topic.arn
        and not subscription.attributes.get("PendingConfirmation", False)
    )


# moto's own spelling of the attribute; its assignment in Topic.__init__ is ignored.
sns.Topic.subscriptions_confimed = property(_confirmed, lambda topic, _: None)

# The dimensions a GetMetricStatistics on this thread asks for, as a set of (name, value).
_asked = threading.local()
_get_all_metrics = cloudwatch.CloudWatchBackend.get_all_metrics
_get_metric_statistics = cloudwatch.CloudWatchBackend.get_metric_statistics


def _dimensions(datum):
    return {(d.name, d.value) for d in datum.dimensions}


def get_all_metrics(self):
    metrics = _get_all_metrics(self)
    wanted = getattr(_asked, "dimensions", None)
    if wanted is None:
        return metrics
    return [datum for datum in metrics if _dimensions(datum) == wanted]


def get_metric_statistics(self, *args, **kwargs):
    dimensions = kwargs.get("dimensions", args[6] if len(args) > 6 else None) or []
    _asked.dimensions = {(d["Name"], d.get("Value")) for d in dimensions}
    try:
        return _get_metric_statistics(self, *args, **kwargs)
    finally:
        _asked.dimensions = None


cloudwatch.CloudWatchBackend.get_all_metrics = get_all_metrics
cloudwatch.CloudWatchBackend.get_metric_statistics = get_metric_statistics

if __name__ == "__main__":
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
