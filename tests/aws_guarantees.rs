//! The guarantees of SPEC §5.8 where AWS is concerned, against the emulator:
//! - undo restores what was there: a Route 53 change (upsert, delete, weight) journals what it
//!   replaces before changing it, keeps the first value across re-runs, restores it exactly
//!   (alias, latency, geolocation and multivalue records too, compared field by field through
//!   the SDK), and leaves alone a record someone changed or deleted since (§5.8.3);
//! - at most once: a promotion whose answer comes after the step's timeout, or whose answer
//!   is a 500 after it acted, was sent once (neither the SDK nor the engine sent it again); its
//!   outcome is unknown and the probe decides (§5.4, §5.8.2).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};
use drctl::actions::{ExecContext, Failure, Registry};
use drctl::aws::{AwsContext, Clients};
use serde_json::{Value, json};

use crate::aws::{Moto, drctl_at, put, record_value, rt, seed, upsert};

fn context(config: &aws_config::SdkConfig, previous: Option<Value>) -> ExecContext {
    ExecContext {
        base_dir: ".".into(),
        timeout: None,
        aws: Arc::new(AwsContext::with_clients(Clients::from_config(config))),
        incident_start: chrono::Utc::now(),
        previous,
        remember: None,
        processes: drctl::actions::processes::StepProcesses::default(),
    }
}

fn args(zone: &str, value: &str) -> serde_json::Map<String, Value> {
    json!({
        "zone_id": zone, "name": "db.orders.example.com", "type": "CNAME", "ttl": 60,
        "values": [value], "wait": false,
    })
    .as_object()
    .unwrap()
    .clone()
}

#[test]
fn a_rerun_keeps_the_first_previous_value_and_the_undo_restores_it() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let (zone, primary) = rt.block_on(seed(&config));
    let action = Registry::builtin().shared("route53.upsert_record").unwrap();
    let wanted = args(&zone, "standby.example.com");
    let first = rt
        .block_on(action.execute(&wanted, &context(&config, None)))
        .unwrap();
    assert_eq!(first["previous"]["values"], json!([primary]));
    // After a crash the step runs again (it is idempotent); the engine hands it what the
    // first attempt journaled, and it must not record its own write as the previous value.
    let journaled = Some(json!({ "previous": first["previous"] }));
    let again = rt
        .block_on(action.execute(&wanted, &context(&config, journaled.clone())))
        .unwrap();
    assert_eq!(again["previous"]["values"], json!([primary]), "{again:?}");
    rt.block_on(action.undo(&wanted, &again, &context(&config, journaled)))
        .unwrap();
    assert_eq!(rt.block_on(record_value(&config, &zone)).0, primary);
}

#[test]
fn an_undo_leaves_alone_a_record_someone_changed_since() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let (zone, _) = rt.block_on(seed(&config));
    let action = Registry::builtin().shared("route53.upsert_record").unwrap();
    let wanted = args(&zone, "standby.example.com");
    let out = rt
        .block_on(action.execute(&wanted, &context(&config, None)))
        .unwrap();
    let journaled = Some(json!({ "previous": out["previous"] }));
    // An operator points the record elsewhere by hand.
    let r53 = aws_sdk_route53::Client::new(&config);
    rt.block_on(upsert(&r53, &zone, "manual.example.com"));
    let e = rt
        .block_on(action.undo(&wanted, &out, &context(&config, journaled)))
        .unwrap_err();
    assert_eq!(e.failure, Failure::Conflict, "{e:?}");
    assert!(e.message.contains("standby.example.com"), "{}", e.message);
    assert!(e.message.contains("manual.example.com"), "{}", e.message);
    assert_eq!(
        rt.block_on(record_value(&config, &zone)).0,
        "manual.example.com",
        "the undo overwrote someone's change"
    );
}

#[test]
fn an_alias_record_replaced_by_a_step_comes_back_whole() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let (zone, _) = rt.block_on(seed(&config));
    let r53 = aws_sdk_route53::Client::new(&config);
    let alias = ResourceRecordSet::builder()
        .name("app.orders.example.com")
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .hosted_zone_id("Z35SXDOTRQ7X7K")
                .dns_name("lb-east.elb.amazonaws.com.")
                .evaluate_target_health(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(alias)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    rt.block_on(
        r53.change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(batch)
            .send(),
    )
    .unwrap();
    let action = Registry::builtin().shared("route53.upsert_record").unwrap();
    let wanted = json!({
        "zone_id": zone, "name": "app.orders.example.com", "type": "A", "ttl": 60,
        "values": ["10.1.2.3"], "wait": false,
    })
    .as_object()
    .unwrap()
    .clone();
    let out = rt
        .block_on(action.execute(&wanted, &context(&config, None)))
        .unwrap();
    assert_eq!(
        out["previous"]["alias_target"]["dns_name"], "lb-east.elb.amazonaws.com.",
        "{out:?}"
    );
    let journaled = Some(json!({ "previous": out["previous"] }));
    rt.block_on(action.undo(&wanted, &out, &context(&config, journaled)))
        .unwrap();
    let sets = rt
        .block_on(r53.list_resource_record_sets().hosted_zone_id(&zone).send())
        .unwrap();
    let back = sets
        .resource_record_sets()
        .iter()
        .find(|r| r.name() == "app.orders.example.com." && r.r#type() == &RrType::A)
        .expect("the record is back");
    let target = back.alias_target().expect("it is an alias again");
    assert_eq!(target.dns_name(), "lb-east.elb.amazonaws.com.");
    assert_eq!(target.hosted_zone_id(), "Z35SXDOTRQ7X7K");
    assert!(target.evaluate_target_health());
    assert!(back.resource_records().is_empty());
}

/// What the proxy does with the emulator's answer to the request it watches (the request
/// itself always reaches the emulator, which carries it out).
#[derive(Clone, Copy)]
pub enum Answer {
    /// Hands it over after this long.
    Late(Duration),
    /// Replaces it with a 500, as a service that acted and then failed to answer does: the
    /// case the SDK's standard retry policy would send again by itself.
    Failed,
}

/// A proxy in front of the emulator that tampers with the answer to one kind of request (see
/// [`Answer`]) and counts those requests.
pub struct SlowProxy {
    pub port: u16,
    /// How many of the watched requests went through.
    pub watched: Arc<AtomicUsize>,
}

fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = client.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn internal_error() -> Vec<u8> {
    let body = "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>\
                <Message>We encountered an internal error. Please try again.</Message></Error>\
                <RequestId>drctl-test</RequestId></ErrorResponse>";
    format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl SlowProxy {
    /// Proxies to the emulator on `upstream`, tampering with the answer to requests whose
    /// text contains `watch` (`Action=PromoteReadReplica`, say).
    pub fn start(upstream: u16, watch: &'static str, tamper: Answer) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let watched = Arc::new(AtomicUsize::new(0));
        let counted = watched.clone();
        // The threads end with the test binary; each handles one client connection.
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let counted = counted.clone();
                std::thread::spawn(move || {
                    let mut client = client;
                    while let Some(request) = read_request(&mut client) {
                        let text = String::from_utf8_lossy(&request).to_string();
                        let watched = text.contains(watch);
                        if watched {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        // One upstream connection per request, closed by the emulator after
                        // its answer, so the answer is read whole.
                        let request = text.replacen("\r\n", "\r\nConnection: close\r\n", 1);
                        let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            return;
                        };
                        if up.write_all(request.as_bytes()).is_err() {
                            return;
                        }
                        let mut answer = Vec::new();
                        let _ = up.read_to_end(&mut answer);
                        if watched {
                            match tamper {
                                Answer::Late(delay) => std::thread::sleep(delay),
                                Answer::Failed => answer = internal_error(),
                            }
                        }
                        if client.write_all(&answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SlowProxy { port, watched }
    }
}

/// Runs a promotion (not idempotent, with a probe; 2 s timeout, 3 attempts allowed) through
/// a proxy that tampers with its answer, and checks it was sent once, went `unknown`, and was
/// settled by the probe.
fn a_promotion_whose_answer_is_lost_is_sent_once(tamper: Answer) {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(seed(&config));
    let upstream: u16 = moto.url.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = SlowProxy::start(upstream, "Action=PromoteReadReplica", tamper);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("promote.toml");
    std::fs::write(
        &file,
        r#"
[workflow]
name = "slow-promotion"
kind = "failover"

[[steps]]
id = "promote"
action = "rds.promote_read_replica"
timeout = "2s"
retry = { attempts = 3, initial = "100ms", max = "100ms" }
with = { region = "us-west-2", db_instance = "orders-replica" }
"#,
    )
    .unwrap();
    let state = dir.path().join("state");
    let slow = format!("http://127.0.0.1:{}", proxy.port);
    let o = drctl_at(&slow, &state).run(&["run", file.to_str().unwrap(), "--as", "ops"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert_eq!(
        proxy.watched.load(Ordering::SeqCst),
        1,
        "the promotion was sent more than once: {}",
        o.text()
    );
    let run = o.run_id();
    let report = drctl_at(&slow, &state)
        .run(&["report", &run, "--format", "json"])
        .json();
    let step = &report["steps"][0];
    assert_eq!(step["status"], "succeeded", "{report}");
    assert_eq!(step["attempts"], 1, "{report}");

    // The journal: one attempt, its outcome unknown, then the probe, which found it done.
    let store = drctl::store::SledStore::open(&state).unwrap();
    let kinds: Vec<String> = drctl::store::Store::journal(&store, &run)
        .unwrap()
        .iter()
        .filter(|e| e.event["step"] == "promote")
        .map(|e| e.event["type"].as_str().unwrap_or_default().to_string())
        .collect();
    let at = |kind: &str| kinds.iter().position(|k| k == kind);
    assert_eq!(
        kinds.iter().filter(|k| *k == "step_started").count(),
        1,
        "{kinds:?}"
    );
    let (Some(unknown), Some(probing), Some(succeeded)) =
        (at("step_unknown"), at("step_probing"), at("step_succeeded"))
    else {
        panic!("unknown, probing, succeeded expected: {kinds:?}");
    };
    assert!(unknown < probing && probing < succeeded, "{kinds:?}");
    assert!(!kinds.contains(&"step_failed".to_string()), "{kinds:?}");
    let outputs = &drctl::store::Store::steps(&store, &run).unwrap()[0].outputs;
    assert!(
        outputs["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with("orders-replica.")),
        "the probe's outputs: {outputs:?}"
    );
    // What AWS says, not drctl: the replica is a primary now.
    let rds = aws_sdk_rds::Client::new(&config);
    let db = rt
        .block_on(
            rds.describe_db_instances()
                .db_instance_identifier("orders-replica")
                .send(),
        )
        .unwrap();
    assert_eq!(
        db.db_instances()[0].read_replica_source_db_instance_identifier(),
        None
    );
}

#[test]
fn a_promotion_answered_after_its_timeout_is_sent_once_and_the_probe_decides() {
    a_promotion_whose_answer_is_lost_is_sent_once(Answer::Late(Duration::from_secs(4)));
}

#[test]
fn a_promotion_answered_500_after_it_acted_is_sent_once_and_the_probe_decides() {
    a_promotion_whose_answer_is_lost_is_sent_once(Answer::Failed);
}

#[test]
fn the_rpo_of_a_restore_is_measured_from_the_incident_start() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    rt.block_on(seed(&config));
    let now = chrono::Utc::now();
    let restore_time = (now - chrono::Duration::minutes(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let incident = (now - chrono::Duration::minutes(10))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pitr.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[workflow]
name = "pitr-rpo"
kind = "restore"

[[steps]]
id = "pitr"
action = "rds.restore_point_in_time"
timeout = "1m"
with = {{ region = "us-west-2", source_db_instance = "orders-db", target_db_instance = "orders-pitr", restore_time = "{restore_time}" }}
measures = "rpo"
"#
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let o = moto.drctl(&state).run(&[
        "run",
        file.to_str().unwrap(),
        "--as",
        "ops",
        "--incident-start",
        &incident,
    ]);
    assert_eq!(o.code, 0, "{}", o.text());
    let run = o.run_id();
    // Incident start − restore time = 20 minutes; from the run's start it would be 30.
    let status: Value = moto
        .drctl(&state)
        .run(&["status", &run, "--format", "json"])
        .json();
    let step = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "pitr")
        .unwrap();
    let restored = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    assert_eq!(
        restored(step["outputs"]["restore_time"].as_str().unwrap()),
        restored(&restore_time),
        "{status}"
    );
    let rpo = step["outputs"]["rpo_seconds"].as_f64().unwrap();
    assert!(
        (rpo - 1200.0).abs() <= 1.0,
        "the step's RPO {rpo} s: {status}"
    );
    let report: Value = moto
        .drctl(&state)
        .run(&["report", &run, "--format", "json"])
        .json();
    let achieved = report["rpo"]["achieved_seconds"].as_f64().unwrap();
    assert!(
        (achieved - 1200.0).abs() <= 1.0,
        "RPO {achieved} s: {report}"
    );
}

/// The record set `name`/`type`/`set_identifier` as the SDK lists it.
async fn listed(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
    set_id: &str,
) -> Option<ResourceRecordSet> {
    r53.list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap()
        .resource_record_sets()
        .iter()
        .find(|r| r.name() == format!("{name}.") && r.set_identifier() == Some(set_id))
        .cloned()
}

fn record(
    name: &str,
    set_id: &str,
    value: &str,
) -> aws_sdk_route53::types::builders::ResourceRecordSetBuilder {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .ttl(45)
        .set_identifier(set_id)
        .resource_records(
            aws_sdk_route53::types::ResourceRecord::builder()
                .value(value)
                .build()
                .unwrap(),
        )
}

fn map(v: &Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// What an attempt journaled through [`ExecContext::record_previous`], and the zone's record
/// sets as they were at that moment.
struct Journaled {
    previous: Value,
    zone_then: Vec<ResourceRecordSet>,
}

/// Runs `action` as the driver does, with a journal that answers its request to record what
/// it replaces, after reading the zone through the SDK: that reading shows whether anything
/// had changed before the value was durable.
async fn execute_journaled(
    action: &dyn drctl::actions::Action,
    a: &serde_json::Map<String, Value>,
    config: &aws_config::SdkConfig,
    zone: &str,
    previous: Option<Value>,
) -> (drctl::actions::Outputs, Option<Journaled>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<drctl::actions::PreviousRequest>();
    let mut ctx = context(config, previous);
    ctx.remember = Some(drctl::actions::Remember {
        step: "change".into(),
        attempt: 1,
        tx,
    });
    let r53 = aws_sdk_route53::Client::new(config);
    let journal = async {
        let mut journaled = None;
        while let Some(request) = rx.recv().await {
            let sets = r53
                .list_resource_record_sets()
                .hosted_zone_id(zone)
                .send()
                .await
                .unwrap();
            journaled = Some(Journaled {
                previous: request.previous.clone(),
                zone_then: sets.resource_record_sets().to_vec(),
            });
            request.reply.send(Ok(())).unwrap();
        }
        journaled
    };
    let attempt = async move {
        let out = action.execute(a, &ctx).await;
        drop(ctx);
        out
    };
    let (out, journaled) = tokio::join!(attempt, journal);
    (out.unwrap(), journaled)
}

#[test]
fn deleted_latency_geolocation_and_multivalue_records_come_back_exactly() {
    use aws_sdk_route53::types::{GeoLocation, ResourceRecordSetRegion};
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let (zone, _) = rt.block_on(seed(&config));
    let r53 = aws_sdk_route53::Client::new(&config);
    let shapes = [
        record("lat.orders.example.com", "use1", "10.0.0.1")
            .region(ResourceRecordSetRegion::UsEast1)
            .health_check_id("0b6c3c9e-hc-east")
            .build()
            .unwrap(),
        record("geo.orders.example.com", "california", "10.0.0.2")
            .geo_location(
                GeoLocation::builder()
                    .country_code("US")
                    .subdivision_code("CA")
                    .build(),
            )
            .build()
            .unwrap(),
        record("geo.orders.example.com", "europe", "10.0.0.3")
            .geo_location(GeoLocation::builder().continent_code("EU").build())
            .build()
            .unwrap(),
        record("multi.orders.example.com", "one", "10.0.0.4")
            .multi_value_answer(true)
            .build()
            .unwrap(),
    ];
    let action = Registry::builtin().shared("route53.delete_record").unwrap();
    for shape in shapes {
        rt.block_on(put(&r53, &zone, ChangeAction::Upsert, shape.clone()));
        let name = shape.name().to_string();
        let set_id = shape.set_identifier().unwrap().to_string();
        let before = rt
            .block_on(listed(&r53, &zone, &name, &set_id))
            .expect("created");
        let a = map(&json!({
            "zone_id": zone, "name": name, "type": "A", "set_identifier": set_id,
        }));
        let (out, journaled) = rt.block_on(execute_journaled(&*action, &a, &config, &zone, None));
        let journaled = journaled.expect("the record was journaled before it was deleted");
        assert!(
            journaled.zone_then.contains(&before),
            "journaled while the record was still there"
        );
        assert_eq!(out["previous"], journaled.previous["previous"]);
        assert!(
            rt.block_on(listed(&r53, &zone, &name, &set_id)).is_none(),
            "{name} {set_id} was deleted"
        );
        rt.block_on(action.undo(&a, &out, &context(&config, Some(journaled.previous))))
            .unwrap();
        let after = rt
            .block_on(listed(&r53, &zone, &name, &set_id))
            .expect("recreated");
        assert_eq!(after, before, "every field of {name} {set_id} is back");
    }
}

#[test]
fn a_deleted_record_someone_recreated_is_left_as_they_set_it() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let (zone, primary) = rt.block_on(seed(&config));
    let action = Registry::builtin().shared("route53.delete_record").unwrap();
    let a = map(&json!({ "zone_id": zone, "name": "db.orders.example.com", "type": "CNAME" }));
    let out = rt
        .block_on(action.execute(&a, &context(&config, None)))
        .unwrap();
    assert_eq!(out["previous"]["values"], json!([primary]));
    let r53 = aws_sdk_route53::Client::new(&config);
    rt.block_on(upsert(&r53, &zone, "manual.example.com"));
    let journaled = Some(json!({ "previous": out["previous"] }));
    let e = rt
        .block_on(action.undo(&a, &out, &context(&config, journaled)))
        .unwrap_err();
    assert_eq!(e.failure, Failure::Conflict, "{e:?}");
    assert!(e.message.contains("manual.example.com"), "{}", e.message);
    assert_eq!(
        rt.block_on(record_value(&config, &zone)).0,
        "manual.example.com"
    );
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one story: drain, re-run, undo, then three changes by someone else"
)]
fn set_weight_keeps_the_first_weight_restores_it_and_leaves_alone_what_someone_changed() {
    let moto = Moto::start();
    let rt = rt();
    let config = rt.block_on(moto.config());
    let (zone, _) = rt.block_on(seed(&config));
    let r53 = aws_sdk_route53::Client::new(&config);
    let name = "app.orders.example.com";
    for (set_id, value, weight) in [("blue", "10.0.0.1", 70), ("green", "10.0.0.2", 30)] {
        let set = record(name, set_id, value).weight(weight).build().unwrap();
        rt.block_on(put(&r53, &zone, ChangeAction::Upsert, set));
    }
    let before = rt.block_on(listed(&r53, &zone, name, "blue")).unwrap();
    let action = Registry::builtin().shared("route53.set_weight").unwrap();
    let drain = map(&json!({
        "zone_id": zone, "name": name, "type": "A", "set_identifier": "blue", "weight": 0,
    }));
    let (out, journaled) = rt.block_on(execute_journaled(&*action, &drain, &config, &zone, None));
    let journaled = journaled.expect("the weight was journaled before the change");
    assert!(
        journaled.zone_then.contains(&before),
        "journaled before the change"
    );
    assert_eq!(out["previous_weight"], 70);
    let drained = rt.block_on(listed(&r53, &zone, name, "blue")).unwrap();
    assert_eq!(drained.weight(), Some(0));
    assert_eq!(drained.resource_records(), before.resource_records());
    assert_eq!(drained.ttl(), before.ttl());

    // A re-run after a crash finds its own weight there: it keeps the first one journaled
    // and journals nothing new.
    let journaled = Some(journaled.previous);
    let (rerun, nothing) = rt.block_on(execute_journaled(
        &*action,
        &drain,
        &config,
        &zone,
        journaled.clone(),
    ));
    assert!(nothing.is_none(), "a re-run journals nothing new");
    assert_eq!(rerun["previous_weight"], 70, "{rerun:?}");
    let again = rt
        .block_on(action.execute(&drain, &context(&config, journaled.clone())))
        .unwrap();
    assert_eq!(again["previous_weight"], 70, "{again:?}");
    rt.block_on(action.undo(&drain, &again, &context(&config, journaled.clone())))
        .unwrap();
    assert_eq!(
        rt.block_on(listed(&r53, &zone, name, "blue")).unwrap(),
        before,
        "the record is as it was, weight and all"
    );

    // Drained again, then someone deletes the record: the undo does not recreate it.
    let (out, journaled) = rt.block_on(execute_journaled(&*action, &drain, &config, &zone, None));
    let journaled = journaled.map(|j| j.previous);
    let drained = rt.block_on(listed(&r53, &zone, name, "blue")).unwrap();
    rt.block_on(put(&r53, &zone, ChangeAction::Delete, drained));
    let e = rt
        .block_on(action.undo(&drain, &out, &context(&config, journaled)))
        .unwrap_err();
    assert_eq!(e.failure, Failure::Conflict, "{e:?}");
    assert!(e.message.contains("weight 0"), "{}", e.message);
    assert!(rt.block_on(listed(&r53, &zone, name, "blue")).is_none());

    // Someone sets another weight after drctl's: the undo keeps theirs.
    rt.block_on(put(
        &r53,
        &zone,
        ChangeAction::Upsert,
        record(name, "blue", "10.0.0.1").weight(0).build().unwrap(),
    ));
    let (out, journaled) = rt.block_on(execute_journaled(&*action, &drain, &config, &zone, None));
    let journaled = journaled.map(|j| j.previous);
    rt.block_on(put(
        &r53,
        &zone,
        ChangeAction::Upsert,
        record(name, "blue", "10.0.0.1").weight(20).build().unwrap(),
    ));
    let e = rt
        .block_on(action.undo(&drain, &out, &context(&config, journaled.clone())))
        .unwrap_err();
    assert_eq!(e.failure, Failure::Conflict, "{e:?}");
    assert!(
        e.message.contains("weight 0") && e.message.contains("weight 20"),
        "{}",
        e.message
    );
    assert_eq!(
        rt.block_on(listed(&r53, &zone, name, "blue"))
            .unwrap()
            .weight(),
        Some(20)
    );

    // Someone points the drained record elsewhere, keeping drctl's weight: restoring the
    // old weight would send traffic to what they changed, so the undo refuses.
    rt.block_on(put(
        &r53,
        &zone,
        ChangeAction::Upsert,
        record(name, "blue", "10.9.9.9").weight(0).build().unwrap(),
    ));
    let e = rt
        .block_on(action.undo(&drain, &out, &context(&config, journaled)))
        .unwrap_err();
    assert_eq!(e.failure, Failure::Conflict, "{e:?}");
    assert!(
        e.message.contains("10.0.0.1") && e.message.contains("10.9.9.9"),
        "{}",
        e.message
    );
    let left = rt.block_on(listed(&r53, &zone, name, "blue")).unwrap();
    assert_eq!(left.weight(), Some(0));
    assert_eq!(left.resource_records()[0].value(), "10.9.9.9");
}
