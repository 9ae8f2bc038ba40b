"""Seeds the AWS-API emulator for a drill and prints what the drill needs to name.

Usage: python3 scripts/seed-emulator.py ENDPOINT_URL [regional-failover | multi-service-failover]

regional-failover (the default): the orders primary and its read replica in us-west-2, a
ReplicaLag reading, and the Route 53 zone with the database CNAME. Prints the hosted zone id.

multi-service-failover: the tasks application's standby region as it waits (the ECS services
auth and task-service at 2 tasks each, the database's read replica with a ReplicaLag reading,
the database endpoint in Parameter Store, the emergency pager topic with an SQS queue
subscribed to it), the canary alarm on us-east-1 firing, and the Route 53 zone with the public
name on the primary region's load balancer. Prints the hosted zone id, the topic ARN and the
queue URL, separated by spaces.
"""

import sys

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


{"regional-failover": regional_failover, "multi-service-failover": multi_service_failover}[drill]()
