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
- Lambda: moto runs functions in docker, which tests do not have; its docker-free backend
  (the server's config, `{"lambda": {"use_docker": false}}`, set here) runs no code at all and
  answers every invocation with its own event. Lambda runs the function: here a Python
  function's handler is run from its zip in a Python process of its own, with the event; what
  it returns is the payload, and an exception it raises is answered as Lambda answers one: the
  header X-Amz-Function-Error (Unhandled) and the document {errorMessage, errorType,
  stackTrace}. moto also ignores Invoke's Qualifier (it reads the query parameter as
  `qualifier`, where Lambda's is `Qualifier`) and always runs $LATEST: here the version or
  alias asked for is run.
  moto also ignores UpdateAlias's RevisionId and keeps an alias's revision through its
  updates. Lambda gives an alias a new revision at each update and refuses an update that
  names another revision than the alias's (412 PreconditionFailedException): here it does
  the same.
- Step Functions: moto leaves every execution RUNNING for ever unless the server's config says
  `{"stepfunctions": {"execute_state_machine": true}}` (set here), when it runs the state
  machine's definition as Step Functions does. That backend snapshots the state machine for
  each new execution with a deep copy, which fails (a 500) once the machine holds an
  execution that has run (its thread's lock cannot be copied): Step Functions starts any
  number of executions of a machine. Here the snapshot leaves the machine's executions out.
- DynamoDB point-in-time restores: moto ignores the point asked for (it copies the table as it
  is now), restores a table whose point-in-time recovery is off, and reports as the restore
  time the moment the copy was made; its latest restorable time stays where it was when
  recovery was enabled. DynamoDB refuses a restore without recovery
  (PointInTimeRecoveryUnavailableException) or outside the window (InvalidRestoreTimeException),
  reports the point restored to as the new table's RestoreSummary.RestoreDateTime (for a
  restore from a backup, the backup's time), and moves the latest restorable time on with the
  clock. Here it does the same (the items copied are still the table's current ones).
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from urllib.parse import unquote
from datetime import datetime, timezone

from moto.awslambda import models as lambda_models
from moto.awslambda import responses as lambda_responses
from moto.awslambda.exceptions import PreconditionFailedException
from moto.awslambda_simple import models as lambda_simple
from moto.cloudwatch import models as cloudwatch
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time, utcnow
from moto.dynamodb import models as dynamodb
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.exceptions import PointInTimeRecoveryUnavailable
from moto.moto_api._internal.models import moto_api_backend
from moto.stepfunctions import models as stepfunctions
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
# Lambda: a Python function's handler, run as Lambda's Python runtime runs it.
RUNTIME = r"""
import importlib, json, sys, traceback
sys.path.insert(0, sys.argv[1])
module, _, name = sys.argv[2].rpartition(".")
event = json.loads(sys.stdin.read() or "null")
try:
    result = getattr(importlib.import_module(module), name)(event, None)
except Exception as e:
    json.dump({"errorMessage": str(e), "errorType": type(e).__name__,
               "stackTrace": traceback.format_tb(e.__traceback__)}, sys.stdout)
    sys.exit(3)
json.dump(result, sys.stdout)
"""

_simple_invoke = lambda_simple.LambdaSimpleBackend.invoke


def invoke(self, function_name, qualifier, body, headers, response_headers):
    fn = self.get_function(function_name, qualifier)
    code = getattr(fn, "code_bytes", b"")
    if not (fn.run_time or "").startswith("python") or not code:
        return _simple_invoke(self, function_name, qualifier, body, headers, response_headers)
    env = dict(os.environ, **(fn.environment_vars or {}))
    env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{sys.argv[1]}", AWS_REGION=fn.region,
               AWS_DEFAULT_REGION=fn.region, AWS_ACCESS_KEY_ID="function",
               AWS_SECRET_ACCESS_KEY="function", AWS_LAMBDA_FUNCTION_NAME=fn.function_name,
               AWS_LAMBDA_FUNCTION_VERSION=str(fn.version))
    with tempfile.TemporaryDirectory() as work:
        bundle = os.path.join(work, "function.zip")
        with open(bundle, "wb") as f:
            f.write(code)
        limit = int(fn.timeout or 3)
        try:
            done = subprocess.run(
                [sys.executable, "-c", RUNTIME, bundle, fn.handler],
                input=body if isinstance(body, str) else (body or b"").decode(),
                capture_output=True,
                text=True,
                env=env,
                timeout=limit,
            )
        except subprocess.TimeoutExpired:
            response_headers["x-amz-function-error"] = "Unhandled"
            timed_out = {"errorMessage": f"Task timed out after {limit}.00 seconds",
                         "errorType": "Sandbox.Timedout"}
            return json.dumps(timed_out).encode()
    if done.returncode == 0:
        return done.stdout.encode()
    response_headers["x-amz-function-error"] = "Unhandled"
    if done.returncode == 3:
        return done.stdout.encode()
    failure = {"errorMessage": done.stderr.strip()[-1000:], "errorType": "Runtime.ExitError"}
    return json.dumps(failure).encode()


lambda_simple.LambdaSimpleBackend.invoke = invoke

_invoke_response = lambda_responses.LambdaResponse.invoke


def invoke_response(self):
    if "Qualifier" in self.querystring:
        self.querystring["qualifier"] = self.querystring["Qualifier"]
    return _invoke_response(self)


lambda_responses.LambdaResponse.invoke = invoke_response

# Lambda aliases: a new revision at each update; an update naming another is refused.
_alias_update = lambda_models.LambdaAlias.update


def alias_update(self, *args, **kwargs):
    _alias_update(self, *args, **kwargs)
    self.revision_id = str(uuid.uuid4())


lambda_models.LambdaAlias.update = alias_update

_update_alias_response = lambda_responses.LambdaResponse.update_alias


def update_alias_response(self):
    asked = json.loads(self.body or "{}").get("RevisionId")
    if asked is not None:
        function_name = unquote(self.path.rsplit("/")[-3])
        alias_name = unquote(self.path.rsplit("/", 2)[-1])
        alias = self.backend.get_alias(alias_name, function_name)
        if alias.revision_id != asked:
            raise PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id. "
                "Call the GetAlias API to retrieve the latest Revision Id"
            )
    return _update_alias_response(self)


lambda_responses.LambdaResponse.update_alias = update_alias_response


# DynamoDB point-in-time recovery: the window moves on, restores are held to it.
_describe_continuous = dynamodb.DynamoDBBackend.describe_continuous_backups


def describe_continuous_backups(self, table_name):
    backups = _describe_continuous(self, table_name)
    pitr = backups["PointInTimeRecoveryDescription"]
    if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
        pitr["LatestRestorableDateTime"] = unix_time()
    return backups


dynamodb.DynamoDBBackend.describe_continuous_backups = describe_continuous_backups


class InvalidRestoreTime(JsonRESTError):
    def __init__(self, message):
        super().__init__("com.amazonaws.dynamodb.v20120810#InvalidRestoreTimeException", message)


def _restore_point(backend, body):
    """The point a restore asks for, held to the source's window, as DynamoDB does."""
    source = body.get("SourceTableName") or body.get("SourceTableArn", "").split("/")[-1]
    pitr = describe_continuous_backups(backend, source)["PointInTimeRecoveryDescription"]
    if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
        raise PointInTimeRecoveryUnavailable(source)
    earliest, latest = pitr["EarliestRestorableDateTime"], pitr["LatestRestorableDateTime"]
    if body.get("UseLatestRestorableTime"):
        return latest
    point = body["RestoreDateTime"]
    point = point.timestamp() if isinstance(point, datetime) else float(point)
    if not earliest <= point <= latest:
        raise InvalidRestoreTime(
            f"Restore time {point} is outside the restorable window [{earliest}, {latest}]"
        )
    return point


_restore_pitr = dynamodb_responses.DynamoHandler.restore_table_to_point_in_time


def restore_table_to_point_in_time(self):
    point = _restore_point(self.dynamodb_backend, self.body)
    result = _restore_pitr(self)
    table = self.dynamodb_backend.tables[self.body["TargetTableName"]]
    table.restore_date_time = datetime.fromtimestamp(point, timezone.utc)
    return dynamodb_responses.DynamoResult(table.describe())


dynamodb_responses.DynamoHandler.restore_table_to_point_in_time = restore_table_to_point_in_time

_restored_init = dynamodb.RestoredTable.__init__


def restored_init(self, name, account_id, region, backup):
    _restored_init(self, name, account_id, region, backup)
    self.restore_date_time = backup.creation_date_time


dynamodb.RestoredTable.__init__ = restored_init

def state_machine_snapshot(self, memo):
    """A copy of the state machine for a new execution, without the executions it holds."""
    clone = self.__class__.__new__(self.__class__)
    memo[id(self)] = clone
    for key, value in self.__dict__.items():
        setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
    return clone


stepfunctions.StateMachine.__deepcopy__ = state_machine_snapshot

moto_api_backend.set_config(
    {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
)

if __name__ == "__main__":
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
