//! AWS access for the AWS actions (Route 53, RDS, ECS, Auto Scaling, SSM Parameter Store and
//! Automation, SNS, `CloudWatch` alarms and metrics, `ElastiCache` global datastores,
//! `DynamoDB`, Lambda, Step Functions): configuration from the standard credential chain and profiles, SDK
//! clients for a region, the endpoint override (`AWS_ENDPOINT_URL` or `--aws-endpoint-url`),
//! request configuration for calls that must be sent only once, and the classification of SDK
//! errors by what they say about their effect ([`CallError`]).
//!
//! This is a layer below the actions: it knows nothing of steps, actions or their errors.
//! The actions call the SDK through [`Clients`] and turn a [`CallError`] into their own step
//! error, where retry, probe and rollback decide what to do with it.
//!
//! Credentials stay inside the SDK: nothing here stores, journals or prints them.

mod calls;
mod error;

pub use error::{CallError, classify};

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;

/// For a call that changes something: no retry by the SDK. The SDK's standard policy resends
/// a request after a timeout, a 5xx or a broken connection, when the first may have taken
/// effect; drctl decides instead, by the step's idempotence and its probe (SPEC §5.4, §5.8.2).
pub fn sent_once_rds() -> aws_sdk_rds::config::Builder {
    aws_sdk_rds::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`sent_once_rds`], for Route 53 changes.
pub fn sent_once_route53() -> aws_sdk_route53::config::Builder {
    aws_sdk_route53::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`sent_once_rds`], for ECS changes.
pub fn sent_once_ecs() -> aws_sdk_ecs::config::Builder {
    aws_sdk_ecs::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`sent_once_rds`], for Auto Scaling changes.
pub fn sent_once_autoscaling() -> aws_sdk_autoscaling::config::Builder {
    aws_sdk_autoscaling::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`sent_once_rds`], for SSM Parameter Store changes.
pub fn sent_once_ssm() -> aws_sdk_ssm::config::Builder {
    aws_sdk_ssm::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`sent_once_rds`], for `ElastiCache` global datastore failovers.
pub fn sent_once_elasticache() -> aws_sdk_elasticache::config::Builder {
    aws_sdk_elasticache::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`sent_once_rds`], for SNS messages: a message resent by the SDK after a 5xx would page
/// people twice.
pub fn sent_once_sns() -> aws_sdk_sns::config::Builder {
    aws_sdk_sns::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`sent_once_rds`], for `DynamoDB` backups and restores.
pub fn sent_once_dynamodb() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`sent_once_rds`], for Lambda: an invocation resent by the SDK after a 5xx would run the
/// function twice.
pub fn sent_once_lambda() -> aws_sdk_lambda::config::Builder {
    aws_sdk_lambda::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`sent_once_rds`], for Step Functions executions.
pub fn sent_once_sfn() -> aws_sdk_sfn::config::Builder {
    aws_sdk_sfn::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// The SDK clients an action uses, for one region.
#[derive(Clone, Debug)]
pub struct Clients {
    /// The region these clients talk to.
    pub region: String,
    /// RDS.
    pub rds: aws_sdk_rds::Client,
    /// Route 53 (global; its clients talk to us-east-1).
    pub route53: aws_sdk_route53::Client,
    /// `CloudWatch`, for replica lag and alarms.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// ECS, for services' task counts.
    pub ecs: aws_sdk_ecs::Client,
    /// EC2 Auto Scaling, for groups' capacity.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// SSM Parameter Store, for the application's configuration, and SSM Automation, for
    /// runbooks.
    pub ssm: aws_sdk_ssm::Client,
    /// `ElastiCache`, for global datastores.
    pub elasticache: aws_sdk_elasticache::Client,
    /// SNS, for paging people.
    pub sns: aws_sdk_sns::Client,
    /// `DynamoDB`, for table backups and restores.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Lambda, for invocations and aliases.
    pub lambda: aws_sdk_lambda::Client,
    /// Step Functions, for state machine executions.
    pub sfn: aws_sdk_sfn::Client,
}

impl Clients {
    /// Clients built from an SDK configuration (its region; Route 53 in us-east-1).
    pub fn from_config(config: &SdkConfig) -> Self {
        let region = config
            .region()
            .map_or_else(|| "us-east-1".to_string(), ToString::to_string);
        // Every client logs its requests (operation, attempt, status, request id).
        macro_rules! logged {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(config)
                        .interceptor(calls::Logged)
                        .build(),
                )
            };
        }
        let route53 = aws_sdk_route53::config::Builder::from(config)
            .region(Region::new("us-east-1"))
            .interceptor(calls::Logged)
            .build();
        Self {
            region,
            rds: logged!(aws_sdk_rds),
            route53: aws_sdk_route53::Client::from_conf(route53),
            cloudwatch: logged!(aws_sdk_cloudwatch),
            ecs: logged!(aws_sdk_ecs),
            autoscaling: logged!(aws_sdk_autoscaling),
            ssm: logged!(aws_sdk_ssm),
            elasticache: logged!(aws_sdk_elasticache),
            sns: logged!(aws_sdk_sns),
            dynamodb: logged!(aws_sdk_dynamodb),
            lambda: logged!(aws_sdk_lambda),
            sfn: logged!(aws_sdk_sfn),
        }
    }
}

/// The process's AWS configuration, loaded on first use. The command line builds one, with
/// `--aws-endpoint-url`, and hands it to every step it runs and to plan.
#[derive(Debug)]
pub struct AwsContext {
    endpoint_url: Option<String>,
    config: tokio::sync::OnceCell<Result<SdkConfig, String>>,
    fixed: Option<Clients>,
    /// How long to wait between polls of an asynchronous AWS operation.
    pub poll_interval: Duration,
}

impl AwsContext {
    /// A context using the standard chain; `endpoint_url` overrides the endpoint of every
    /// service (also read from `AWS_ENDPOINT_URL` by the SDK).
    pub fn new(endpoint_url: Option<String>) -> Self {
        let poll_interval = std::env::var("DRCTL_AWS_POLL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(5), Duration::from_millis);
        Self {
            endpoint_url,
            config: tokio::sync::OnceCell::new(),
            fixed: None,
            poll_interval,
        }
    }

    /// A context that always hands out these clients (SDK-level mocks in tests).
    pub fn with_clients(clients: Clients) -> Self {
        Self {
            endpoint_url: None,
            config: tokio::sync::OnceCell::new(),
            fixed: Some(clients),
            poll_interval: Duration::from_millis(1),
        }
    }

    async fn config(&self) -> Result<&SdkConfig, CallError> {
        let loaded = self
            .config
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(url) = &self.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                let config = loader.load().await;
                // One clear error for a missing credential chain, instead of an SDK dump at
                // the first call.
                match config.credentials_provider() {
                    None => Err("no AWS credentials provider is configured".to_string()),
                    Some(provider) => match provider.provide_credentials().await {
                        Ok(_) => Ok(config),
                        Err(e) => Err(format!(
                            "no AWS credentials found ({e}); set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance or task role is available"
                        )),
                    },
                }
            })
            .await;
        loaded.as_ref().map_err(|e| CallError::Fatal(e.clone()))
    }

    /// Clients for `region`, or the configured default region.
    pub async fn clients(&self, region: Option<&str>) -> Result<Clients, CallError> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let config = self.config().await?;
        let region = match region {
            Some(r) => r.to_string(),
            None => config.region().map(ToString::to_string).ok_or_else(|| {
                CallError::Fatal("no AWS region: give the step a `region`, or set AWS_REGION or a profile region".into())
            })?,
        };
        let regional = config.to_builder().region(Region::new(region)).build();
        Ok(Clients::from_config(&regional))
    }
}
