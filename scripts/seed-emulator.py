"""Seeds the AWS-API emulator for a drill and prints what the drill needs to name.

Usage: python3 scripts/seed-emulator.py ENDPOINT_URL [regional-failover | multi-service-failover | serverless-restore]

regional-failover (the default): the orders primary and its read replica in us-west-2, a
ReplicaLag reading, and the Route 53 zone with the database CNAME. Prints the hosted zone id.

multi-service-failover: the tasks application's standby region as it waits (the ECS services
auth and task-service at 2 tasks each, the database's read replica with a ReplicaLag reading,
the database endpoint in Parameter Store, the emergency pager topic with an SQS queue
subscribed to it), the canary alarm on us-east-1 firing, and the Route 53 zone with the public
name on the primary region's load balancer. Prints the hosted zone id, the topic ARN and the
queue URL, separated by spaces.

serverless-restore: the tasks application's serverless side after a bad deployment (see
workflows/serverless-restore.toml): the DynamoDB table tasks (25 items, point-in-time recovery
on), the function tasks-api with its good version 1, its bad version 2 and a fix not yet released
(version 3), the alias live on version 2, the function tasks-verify (counts a table's items, and fails below a minimum), the
state machine tasks-reconcile, and the table's name in Parameter Store. Prints a restore time
inside the table's restorable window (RFC 3339).
"""

import io
import json
import sys
import time
import zipfile
from datetime import datetime, timedelta, timezone

import boto3

url = sys.argv[1]
drill = sys.argv[2] if len(sys.argv) > 2 else "regional-failover"
kw = dict(endpoint_url=url, region_name="us-west-2", aws_access_key_id="drill", aws_secret_access_key="drill")


def database(primary_id, replica_id, lag):
    """A primary, its read replica and a ReplicaLag reading; returns the primary's endpoint."""
    rds = boto3.client("rds", **kw)
    rds.create_db_instance(
        DBInstanceIdentifier=primary_id, DBInstanceClass="db.r6g.large", Engine="postgres",
        MasterUsername="app", MasterUserPassword="not-a-secret", AllocatedStorage=100, BackupRetentionPeriod=7,
    )
    rds.create_db_instance_read_replica(DBInstanceIdentifier=replica_id, SourceDBInstanceIdentifier=primary_id)
    boto3.client("cloudwatch", **kw).put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[{"MetricName": "ReplicaLag", "Value": lag, "Unit": "Seconds",
                     "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": replica_id}]}],
    )
    return rds.describe_db_instances(DBInstanceIdentifier=primary_id)["DBInstances"][0]["Endpoint"]["Address"]


def zone_with_cname(domain, name, value):
    r53 = boto3.client("route53", **kw)
    zone = r53.create_hosted_zone(Name=domain, CallerReference=f"drill-{domain}")["HostedZone"]["Id"].split("/")[-1]
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": name, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": value}]}}]})
    return zone


def regional_failover():
    primary = database("orders-db", "orders-db-replica-usw2", 2.0)
    print(zone_with_cname("internal.example.com", "db.orders.internal.example.com", primary))


def multi_service_failover():
    primary = database("tasks-db", "tasks-db-replica-usw2", 3.0)
    ecs = boto3.client("ecs", **kw)
    ecs.create_cluster(clusterName="tasks-usw2")
    for service in ["auth", "task-service"]:
        ecs.register_task_definition(family=service, containerDefinitions=[
            {"name": service, "image": f"registry.example.com/tasks/{service}:stable", "memory": 512}])
        ecs.create_service(cluster="tasks-usw2", serviceName=service, taskDefinition=service, desiredCount=2)
    boto3.client("ssm", **kw).put_parameter(Name="/tasks/prod/db-endpoint", Value=primary, Type="String")
    sns, sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
    topic = sns.create_topic(Name="tasks-emergency")["TopicArn"]
    queue = sqs.create_queue(QueueName="tasks-emergency-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    cw = boto3.client("cloudwatch", **kw)
    cw.put_metric_alarm(
        AlarmName="tasks-use1-canary-failing", Namespace="CloudWatchSynthetics", MetricName="SuccessPercent",
        Dimensions=[{"Name": "CanaryName", "Value": "tasks-use1-api"}], Statistic="Average", Period=60,
        EvaluationPeriods=3, Threshold=90.0, ComparisonOperator="LessThanThreshold",
    )
    cw.set_alarm_state(AlarmName="tasks-use1-canary-failing", StateValue="ALARM",
                       StateReason="Threshold Crossed: 3 datapoints were less than the threshold (90.0)")
    zone = zone_with_cname("tasks.example.com", "api.tasks.example.com", "tasks-use1-0987654321.us-east-1.elb.amazonaws.com")
    print(zone, topic, queue)


def function_zip(source):
    """A Python function's deployment package: index.py holding `source`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", source)
    return buf.getvalue()


VERIFY = """
import boto3

def handler(event, context):
    table = event["table"]
    items = boto3.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"]
    if items < int(event.get("min_items", 1)):
        raise ValueError(f"table {table} holds {items} items, fewer than {event.get('min_items', 1)}")
    return {"table": table, "items": items}
"""


def serverless_restore():
    ddb = boto3.client("dynamodb", **kw)
    ddb.create_table(TableName="tasks", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    for i in range(25):
        ddb.put_item(TableName="tasks", Item={"id": {"S": f"task-{i:03}"}, "state": {"S": "open"}})
    ddb.update_continuous_backups(TableName="tasks",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    iam = boto3.client("iam", **kw)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                        "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]})
    role = iam.create_role(RoleName="tasks-serverless", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    lam = boto3.client("lambda", **kw)
    api = "def handler(event, context):\n    return {'release': '%s'}\n"
    lam.create_function(FunctionName="tasks-api", Runtime="python3.12", Role=role, Handler="index.handler",
                        Code={"ZipFile": function_zip(api % "2026.11.1")})
    lam.publish_version(FunctionName="tasks-api", Description="2026.11.1, last good")
    lam.update_function_code(FunctionName="tasks-api", ZipFile=function_zip(api % "2026.11.2"))
    lam.publish_version(FunctionName="tasks-api", Description="2026.11.2, writes bad task states")
    lam.update_function_code(FunctionName="tasks-api", ZipFile=function_zip(api % "2026.11.3"))
    lam.publish_version(FunctionName="tasks-api", Description="2026.11.3, a fix not yet released")
    lam.create_alias(FunctionName="tasks-api", Name="live", FunctionVersion="2")
    lam.create_function(FunctionName="tasks-verify", Runtime="python3.12", Role=role, Handler="index.handler",
                        Code={"ZipFile": function_zip(VERIFY)}, Timeout=30)
    definition = {"StartAt": "Replay", "States": {
        "Replay": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"table.$": "$.table", "reconciled": True}, "End": True}}}
    boto3.client("stepfunctions", **kw).create_state_machine(
        name="tasks-reconcile", roleArn=role, definition=json.dumps(definition))
    boto3.client("ssm", **kw).put_parameter(Name="/tasks/prod/table", Value="tasks", Type="String")
    # A moment inside the restorable window: after recovery was switched on, before now.
    pitr = ddb.describe_continuous_backups(TableName="tasks")["ContinuousBackupsDescription"]
    earliest = pitr["PointInTimeRecoveryDescription"]["EarliestRestorableDateTime"]
    point = (earliest + timedelta(seconds=1)).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(max(0.0, (point - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    print(point.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


{"regional-failover": regional_failover, "multi-service-failover": multi_service_failover,
 "serverless-restore": serverless_restore}[drill]()
