//! Route 53 actions: DNS record changes and health checks. Route 53 is global: these actions
//! take no `region`.

use super::route53_exec as exec;
use super::schema::{ParamSpec as P, ParamType as T};
use super::{Action, ActionSpec, Arg, ArgProblem, Args, Effect};

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![
        Box::new(UpsertRecord),
        Box::new(DeleteRecord),
        Box::new(WaitInsync),
        Box::new(SetWeight),
        Box::new(HealthCheckStatus),
    ]
}

const RECORD_TYPES: &[&str] = &[
    "A", "AAAA", "CAA", "CNAME", "DS", "MX", "NAPTR", "NS", "PTR", "SPF", "SRV", "TXT",
];
const TTL: T = T::Integer {
    min: 0,
    max: 2_147_483_647,
};
const WEIGHT: T = T::Integer { min: 0, max: 255 };

struct UpsertRecord;

static UPSERT: ActionSpec = ActionSpec {
    name: "route53.upsert_record",
    summary: "Create or replace a record set; records the previous one and restores it (or deletes the record) on rollback.",
    params: &[
        P::required("zone_id", T::String, "hosted zone id"),
        P::required("name", T::String, "record name, e.g. db.example.com"),
        P::required("type", T::OneOf(RECORD_TYPES), "record type"),
        P::required("ttl", TTL, "time to live in seconds"),
        P::required("values", T::StringList, "the record values"),
        P::optional(
            "set_identifier",
            T::String,
            "identifies one record of a weighted or failover set",
        ),
        P::optional("weight", WEIGHT, "weight, for weighted routing"),
        P::optional(
            "failover",
            T::OneOf(&["PRIMARY", "SECONDARY"]),
            "role, for failover routing",
        ),
        P::optional(
            "health_check_id",
            T::String,
            "health check attached to the record",
        ),
        P::defaulted("wait", T::Bool, "true", "wait until the change is INSYNC"),
    ],
    outputs: &["change_id", "previous"],
    idempotent: true,
    effect: Effect::SelfUndoing,
};

impl Action for UpsertRecord {
    fn spec(&self) -> &'static ActionSpec {
        &UPSERT
    }

    fn check(&self, args: &Args) -> Vec<ArgProblem> {
        let mut problems = routing_problems(args);
        if args.get("type").and_then(Arg::literal_text).as_deref() == Some("CNAME")
            && let Some(Arg::List(values)) = args.get("values")
            && values.len() > 1
        {
            problems.push(ArgProblem {
                param: Some("values"),
                message: format!(
                    "a CNAME record holds exactly one value, {} are given",
                    values.len()
                ),
            });
        }
        problems
    }

    fn describe(&self, args: &Args) -> String {
        let mut out = format!(
            "set {} {} in zone {} to {} (TTL {}s)",
            args.show("name"),
            args.show("type"),
            args.show("zone_id"),
            args.show("values"),
            args.show("ttl"),
        );
        if let Some(id) = args.get("set_identifier") {
            out.push_str(&format!(", set {id}"));
        }
        if let Some(w) = args.get("weight") {
            out.push_str(&format!(", weight {w}"));
        }
        if let Some(f) = args.get("failover") {
            out.push_str(&format!(", failover {f}"));
        }
        if args.bool("wait") != Some(false) {
            out.push_str("; wait for INSYNC");
        }
        out.push_str("; rollback restores the previous record");
        out
    }

    hooks! {
        execute = exec::upsert,
        undo = exec::undo_upsert,
        current = exec::current_record,
    }
}

/// Weighted and failover routing each need a set identifier, and exclude each other.
fn routing_problems(args: &Args) -> Vec<ArgProblem> {
    let mut problems = Vec::new();
    let routed = args.get("weight").is_some() || args.get("failover").is_some();
    if routed && args.get("set_identifier").is_none() {
        problems.push(ArgProblem {
            param: None,
            message: "`weight` and `failover` routing need a `set_identifier`".into(),
        });
    }
    if args.get("weight").is_some() && args.get("failover").is_some() {
        problems.push(ArgProblem {
            param: Some("failover"),
            message: "a record uses either weighted (`weight`) or failover (`failover`) routing, not both".into(),
        });
    }
    problems
}

struct DeleteRecord;

static DELETE: ActionSpec = ActionSpec {
    name: "route53.delete_record",
    summary: "Delete a record set; records it first and recreates it on rollback.",
    params: &[
        P::required("zone_id", T::String, "hosted zone id"),
        P::required("name", T::String, "record name"),
        P::required("type", T::OneOf(RECORD_TYPES), "record type"),
        P::optional(
            "set_identifier",
            T::String,
            "identifies one record of a weighted or failover set",
        ),
    ],
    outputs: &["change_id", "previous"],
    idempotent: false,
    effect: Effect::SelfUndoing,
};

impl Action for DeleteRecord {
    fn spec(&self) -> &'static ActionSpec {
        &DELETE
    }

    fn describe(&self, args: &Args) -> String {
        let set = args
            .get("set_identifier")
            .map(|s| format!(" (set {s})"))
            .unwrap_or_default();
        format!(
            "delete {} {}{set} from zone {}; rollback recreates it",
            args.show("name"),
            args.show("type"),
            args.show("zone_id")
        )
    }

    hooks! {
        execute = exec::delete,
        undo = exec::undo_delete,
        current = exec::current_record,
    }
}

struct WaitInsync;

static WAIT_INSYNC: ActionSpec = ActionSpec {
    name: "route53.wait_insync",
    summary: "Wait until a Route 53 change is INSYNC on every authoritative server.",
    params: &[P::required(
        "change_id",
        T::String,
        "the change, usually ${steps.ID.outputs.change_id}",
    )],
    outputs: &[],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for WaitInsync {
    fn spec(&self) -> &'static ActionSpec {
        &WAIT_INSYNC
    }

    fn describe(&self, args: &Args) -> String {
        format!("wait until change {} is INSYNC", args.show("change_id"))
    }

    hooks! {
        execute = exec::insync,
    }
}

struct SetWeight;

static SET_WEIGHT: ActionSpec = ActionSpec {
    name: "route53.set_weight",
    summary: "Change the weight of one record of a weighted set; restores the previous weight on rollback.",
    params: &[
        P::required("zone_id", T::String, "hosted zone id"),
        P::required("name", T::String, "record name"),
        P::required("type", T::OneOf(RECORD_TYPES), "record type"),
        P::required("set_identifier", T::String, "which record of the set"),
        P::required("weight", WEIGHT, "the new weight (0 drains it)"),
    ],
    outputs: &["previous_weight"],
    idempotent: true,
    effect: Effect::SelfUndoing,
};

impl Action for SetWeight {
    fn spec(&self) -> &'static ActionSpec {
        &SET_WEIGHT
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "set the weight of {} {} (set {}) in zone {} to {}; rollback restores the previous weight",
            args.show("name"),
            args.show("type"),
            args.show("set_identifier"),
            args.show("zone_id"),
            args.show("weight"),
        )
    }

    hooks! {
        execute = exec::set_weight,
        undo = exec::undo_set_weight,
        current = exec::current_record,
    }
}

struct HealthCheckStatus;

static HEALTH: ActionSpec = ActionSpec {
    name: "route53.health_check_status",
    summary: "Read a Route 53 health check; fails unless it reports the expected state.",
    params: &[
        P::required("health_check_id", T::String, "the health check"),
        P::defaulted(
            "expect",
            T::OneOf(&["healthy", "unhealthy"]),
            "healthy",
            "the state required",
        ),
    ],
    outputs: &["healthy"],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for HealthCheckStatus {
    fn spec(&self) -> &'static ActionSpec {
        &HEALTH
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "check that health check {} is {}",
            args.show("health_check_id"),
            args.show_or("expect", "healthy")
        )
    }

    hooks! {
        execute = exec::health,
    }
}
