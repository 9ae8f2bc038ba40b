//! AWS actions with the real SDK against a real AWS-API emulator (moto, started on 127.0.0.1
//! on a free port and stopped after), asserting the resulting state through the SDK rather
//! than through drctl's own view. What moto cannot do (global-cluster failover and switchover,
//! throttling followed by success) is tested with SDK-level mocks.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use drctl::actions::ExecContext;
use drctl::aws::{AwsContext, Clients};

use crate::harness::root;
use crate::support::Drctl;

/// A moto server for one test; killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .arg(root().join("tests/support/moto_server.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (install moto with: pip install 'moto[server]')");
        let mut moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto_server exited ({status}): is moto installed? pip install 'moto[server]'"
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen within 30s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub async fn config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(Region::new("us-west-2"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    /// drctl against this emulator.
    pub fn drctl(&self, state: &Path) -> Drctl {
        drctl_at(&self.url, state)
    }
}

/// drctl with every AWS request sent to `url`, as a test user of the emulator, polling fast.
pub fn drctl_at(url: &str, state: &Path) -> Drctl {
    Drctl::new(state)
        .current_dir(root())
        .arg("--aws-endpoint-url")
        .arg(url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-west-2")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("DRCTL_AWS_POLL_MS", "50")
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A primary, a read replica with a lag reading, a hosted zone and a CNAME to the primary.
/// Returns the zone id and the primary's endpoint.
pub async fn seed(config: &aws_config::SdkConfig) -> (String, String) {
    let rds = aws_sdk_rds::Client::new(config);
    rds.create_db_instance()
        .db_instance_identifier("orders-db")
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .master_username("admin")
        .master_user_password("password123")
        .allocated_storage(20)
        .backup_retention_period(7)
        .send()
        .await
        .unwrap();
    rds.create_db_instance_read_replica()
        .db_instance_identifier("orders-replica")
        .source_db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap();
    let primary = rds
        .describe_db_instances()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap();
    let primary_endpoint = primary.db_instances()[0]
        .endpoint()
        .unwrap()
        .address()
        .unwrap()
        .to_string();
    let cw = aws_sdk_cloudwatch::Client::new(config);
    cw.put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("ReplicaLag")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("DBInstanceIdentifier")
                        .value("orders-replica")
                        .build(),
                )
                .value(4.0)
                .unit(aws_sdk_cloudwatch::types::StandardUnit::Seconds)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let r53 = aws_sdk_route53::Client::new(config);
    let zone = r53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("drctl-test")
        .send()
        .await
        .unwrap();
    let zone_id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    upsert(&r53, &zone_id, &primary_endpoint).await;
    (zone_id, primary_endpoint)
}

pub async fn upsert(r53: &aws_sdk_route53::Client, zone: &str, value: &str) {
    use aws_sdk_route53::types::{ChangeAction, ResourceRecord, ResourceRecordSet, RrType};
    let set = ResourceRecordSet::builder()
        .name("db.orders.example.com")
        .r#type(RrType::Cname)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    put(r53, zone, ChangeAction::Upsert, set).await;
}

/// Sends one change of `set` to the zone, as someone other than drctl would.
pub async fn put(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    action: aws_sdk_route53::types::ChangeAction,
    set: aws_sdk_route53::types::ResourceRecordSet,
) {
    use aws_sdk_route53::types::{Change, ChangeBatch};
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(action)
                .resource_record_set(set)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .unwrap();
}

pub async fn record_value(config: &aws_config::SdkConfig, zone: &str) -> (String, Option<i64>) {
    let r53 = aws_sdk_route53::Client::new(config);
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    let set = out
        .resource_record_sets()
        .iter()
        .find(|r| r.name() == "db.orders.example.com.")
        .expect("the record exists");
    (set.resource_records()[0].value().to_string(), set.ttl())
}

async fn replica_source(config: &aws_config::SdkConfig, id: &str) -> Option<String> {
    let rds = aws_sdk_rds::Client::new(config);
    let out = rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap();
    out.db_instances()[0]
        .read_replica_source_db_instance_identifier()
        .map(str::to_string)
}

fn failover_workflow(dir: &Path, zone: &str) -> String {
    let text = std::fs::read_to_string(root().join("tests/fixtures/aws/failover.toml")).unwrap();
    let file = dir.join("failover.toml");
    std::fs::write(&file, text.replace("ZONE_ID", zone)).unwrap();
    file.display().to_string()
}

#[test]
fn failover_promotes_the_replica_switches_dns_and_rolls_dns_back() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let (zone, primary) = rt.block_on(seed(&config));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = failover_workflow(dir.path(), &zone);

    // The plan reads the live state and changes nothing.
    let plan = moto.drctl(&state).run(&["plan", &file]);
    let out = plan.text();
    assert_eq!(plan.code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "current: db.orders.example.com CNAME = [{primary}] TTL 300s"
        )),
        "{out}"
    );
    assert!(
        out.contains("current: orders-replica is a read replica of orders-db"),
        "{out}"
    );
    assert!(out.contains("current: replica lag now 4s"), "{out}");
    assert_eq!(
        rt.block_on(record_value(&config, &zone)).0,
        primary,
        "plan changed nothing"
    );
    assert!(
        rt.block_on(replica_source(&config, "orders-replica"))
            .is_some(),
        "plan changed nothing"
    );

    let run = moto.drctl(&state).run(&["drill", &file]);
    let out = run.text();
    assert_eq!(run.code, 0, "{out}");
    let run_id = run.run_id();

    // The state AWS reports, not drctl's view of it.
    assert_eq!(
        rt.block_on(replica_source(&config, "orders-replica")),
        None,
        "the replica is now a primary"
    );
    let (value, ttl) = rt.block_on(record_value(&config, &zone));
    assert!(
        value.starts_with("orders-replica."),
        "DNS points at the promoted replica: {value}"
    );
    assert_eq!(ttl, Some(60));
    let status: serde_json::Value = moto
        .drctl(&state)
        .run(&["status", &run_id, "--format", "json"])
        .json();
    let lag = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "replica-lag")
        .unwrap();
    assert_eq!(lag["outputs"]["rpo_seconds"], 4.0);

    // Rolling back restores the previous record; the promotion cannot be undone and says so.
    let back = moto.drctl(&state).run(&["rollback", &run_id]);
    let out = back.text();
    assert_eq!(back.code, 5, "{out}");
    assert!(
        out.contains("not undone (no compensation): promote"),
        "{out}"
    );
    let (value, ttl) = rt.block_on(record_value(&config, &zone));
    assert_eq!(value, primary, "DNS points at the old primary again");
    assert_eq!(ttl, Some(300));
}

#[test]
fn restores_from_a_snapshot_and_to_a_point_in_time() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(seed(&config));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = root()
        .join("tests/fixtures/aws/restore.toml")
        .display()
        .to_string();
    let run = moto.drctl(&state).run(&["drill", &file]);
    let out = run.text();
    assert_eq!(run.code, 0, "{out}");

    let rds = aws_sdk_rds::Client::new(&config);
    for id in ["orders-from-snapshot", "orders-pitr"] {
        let db = rt
            .block_on(
                rds.describe_db_instances()
                    .db_instance_identifier(id)
                    .send(),
            )
            .unwrap();
        assert_eq!(
            db.db_instances()[0].db_instance_status(),
            Some("available"),
            "{id}"
        );
    }
    let snap = rt
        .block_on(
            rds.describe_db_snapshots()
                .db_snapshot_identifier("orders-before-restore")
                .send(),
        )
        .unwrap();
    assert_eq!(snap.db_snapshots().len(), 1);
    let status: serde_json::Value = moto
        .drctl(&state)
        .run(&["status", "--format", "json"])
        .json();
    let step = |id: &str| {
        status["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    assert!(step("pitr")["outputs"]["restore_time"].is_string());
    assert!(step("pitr")["outputs"]["rpo_seconds"].as_f64().unwrap() >= 0.0);
    assert!(
        step("from-snapshot")["outputs"]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("orders-from-snapshot.")
    );
}

#[test]
fn aws_errors_name_the_resource_and_fail_at_once() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("missing.toml");
    std::fs::write(
        &file,
        "[workflow]\nname = \"missing\"\nkind = \"failover\"\non_failure = \"abort\"\n[defaults]\nretry = { attempts = 3 }\n\
         [[steps]]\nid = \"wait\"\naction = \"rds.wait_available\"\nwith = { region = \"us-west-2\", db_instance = \"no-such-db\" }\n",
    )
    .unwrap();
    let run = moto.drctl(&state).run(&["run", file.to_str().unwrap()]);
    let out = run.text();
    assert_eq!(run.code, 4, "{out}");
    assert!(
        out.contains("no-such-db") && out.contains("us-west-2"),
        "{out}"
    );
    assert!(out.contains("check the name and the region"), "{out}");
    assert!(
        !out.contains("attempt 2"),
        "not found is not retried: {out}"
    );
}

#[test]
fn a_missing_credential_chain_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Drctl::new(dir.path().join("state"))
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("AWS_REGION", "us-west-2")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .run(&["run", "tests/fixtures/aws/restore.toml"])
        .text();
    assert!(out.contains("no AWS credentials found"), "{out}");
    assert!(!out.contains("DispatchFailure"), "no SDK dump: {out}");
}

#[test]
fn a_promotion_whose_outcome_was_lost_is_resolved_by_the_probe_not_rerun() {
    use drctl::engine::{Driver, Input, NewRun, Run, SystemClock, Until};
    use drctl::store::{MemoryStore, RunStatus, Store};

    let moto = Moto::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = rt.block_on(moto.config());
    rt.block_on(seed(&config));
    let source = "[workflow]\nname = \"probe\"\nkind = \"failover\"\n\n[[steps]]\nid = \"promote\"\naction = \"rds.promote_read_replica\"\nwith = { region = \"us-west-2\", db_instance = \"orders-replica\" }\n";
    let checked = drctl::check::check_source(
        drctl::diagnostic::SourceFile::new("probe.toml", source),
        &drctl::actions::Registry::builtin(),
        &[],
    );
    let workflow = Arc::new(checked.workflow.expect("valid"));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let new = NewRun {
        workflow: Arc::clone(&workflow),
        workflow_file: "probe.toml".into(),
        workflow_source: source.into(),
        overrides: vec![],
        mode: drctl::store::RunMode::Drill,
        initiator: "ops".into(),
        incident_start: None,
        key: None,
    };
    let mut run = Run::start(store.clone(), &new, &SystemClock).unwrap();

    // The attempt is journaled as started, the promotion happens, and the process dies before
    // recording the outcome.
    let now = chrono::Utc::now();
    run.advance(Input::Start, now).unwrap();
    let rds = aws_sdk_rds::Client::new(&config);
    rt.block_on(
        rds.promote_read_replica()
            .db_instance_identifier("orders-replica")
            .send(),
    )
    .unwrap();

    // A new process takes the run up.
    let clients = Clients::from_config(&config);
    let exec = ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: Arc::new(AwsContext::with_clients(clients)),
        incident_start: now,
        previous: None,
        remember: None,
        processes: drctl::actions::processes::StepProcesses::default(),
    };
    let mut driver = Driver::new(
        run,
        &drctl::engine::Services::new(AwsContext::new(None)),
        exec,
        Box::new(|_, _, _| {}),
    );
    driver.feed(Input::Interrupted).unwrap();
    let status = rt
        .block_on(driver.drive(
            Input::Recover,
            Until::Done,
            None,
            Box::pin(std::future::pending()),
        ))
        .unwrap();
    assert_eq!(status, RunStatus::Succeeded);

    let run_id = driver.run.id().to_string();
    let kinds: Vec<String> = store
        .journal(&run_id)
        .unwrap()
        .iter()
        .map(|e| e.event["type"].as_str().unwrap().to_string())
        .collect();
    let started = kinds.iter().filter(|k| *k == "step_started").count();
    assert_eq!(started, 1, "the promotion was not started again: {kinds:?}");
    assert!(kinds.contains(&"step_probing".to_string()), "{kinds:?}");
    let promote = store
        .steps(&run_id)
        .unwrap()
        .into_iter()
        .find(|s| s.step == "promote")
        .unwrap();
    assert!(
        promote.outputs["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("orders-replica.")
    );
}
