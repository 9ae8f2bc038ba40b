"""Seeds the AWS-API emulator for the regional-failover drill: the orders primary and its read
replica in us-west-2, a ReplicaLag reading, and the Route 53 zone with the database CNAME.
Prints the hosted zone id.

Usage: python3 scripts/seed-emulator.py ENDPOINT_URL
"""

import sys

import boto3

url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-west-2", aws_access_key_id="drill", aws_secret_access_key="drill")
rds = boto3.client("rds", **kw)
rds.create_db_instance(
    DBInstanceIdentifier="orders-db", DBInstanceClass="db.r6g.large", Engine="postgres",
    MasterUsername="orders", MasterUserPassword="not-a-secret", AllocatedStorage=100, BackupRetentionPeriod=7,
)
rds.create_db_instance_read_replica(DBInstanceIdentifier="orders-db-replica-usw2", SourceDBInstanceIdentifier="orders-db")
primary = rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"][0]["Endpoint"]["Address"]
boto3.client("cloudwatch", **kw).put_metric_data(
    Namespace="AWS/RDS",
    MetricData=[{"MetricName": "ReplicaLag", "Value": 2.0, "Unit": "Seconds",
                 "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "orders-db-replica-usw2"}]}],
)
r53 = boto3.client("route53", **kw)
zone = r53.create_hosted_zone(Name="internal.example.com", CallerReference="drill")["HostedZone"]["Id"].split("/")[-1]
r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
    "Name": "db.orders.internal.example.com", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": primary}]}}]})
print(zone)
