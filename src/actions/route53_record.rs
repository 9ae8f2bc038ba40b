//! Route 53 record sets as JSON and back, whole: what a step replaced is restored exactly,
//! whatever its shape (simple, weighted, failover, latency, geolocation, geoproximity,
//! multivalue, CIDR, alias). And the comparison an undo makes before it restores: does the
//! record still hold what drctl wrote?

use aws_sdk_route53::types::{
    AliasTarget, CidrRoutingConfig, Coordinates, GeoLocation, GeoProximityLocation, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, ResourceRecordSetRegion, RrType,
};
use serde_json::{Value, json};

use super::outcome::StepError;

fn build_err(e: impl std::fmt::Display) -> StepError {
    StepError::fatal(format!("could not build the Route 53 record: {e}"))
}

/// A record set as JSON (the `previous` output, and what is journaled before a change).
pub fn to_json(r: &ResourceRecordSet) -> Value {
    let mut v = json!({
        "name": r.name(),
        "type": r.r#type().as_str(),
        "ttl": r.ttl(),
        "values": r.resource_records().iter().map(ResourceRecord::value).collect::<Vec<_>>(),
        "set_identifier": r.set_identifier(),
        "weight": r.weight(),
        "failover": r.failover().map(|f| f.as_str().to_string()),
        "health_check_id": r.health_check_id(),
        "region": r.region().map(|x| x.as_str().to_string()),
        "multi_value_answer": r.multi_value_answer(),
    });
    if let Some(a) = r.alias_target() {
        v["alias_target"] = json!({
            "hosted_zone_id": a.hosted_zone_id(),
            "dns_name": a.dns_name(),
            "evaluate_target_health": a.evaluate_target_health(),
        });
    }
    if let Some(g) = r.geo_location() {
        v["geo_location"] = json!({
            "continent_code": g.continent_code(),
            "country_code": g.country_code(),
            "subdivision_code": g.subdivision_code(),
        });
    }
    if let Some(c) = r.cidr_routing_config() {
        v["cidr_routing_config"] = json!({
            "collection_id": c.collection_id(),
            "location_name": c.location_name(),
        });
    }
    if let Some(g) = r.geo_proximity_location() {
        v["geo_proximity_location"] = json!({
            "aws_region": g.aws_region(),
            "local_zone_group": g.local_zone_group(),
            "bias": g.bias(),
            "coordinates": g.coordinates().map(|c| json!({
                "latitude": c.latitude(),
                "longitude": c.longitude(),
            })),
        });
    }
    v
}

fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().map(str::to_string)
}

/// The record set `v` describes (from [`to_json`], or a step's parameters).
pub fn from_json(v: &Value) -> Result<ResourceRecordSet, StepError> {
    let mut set = ResourceRecordSet::builder()
        .name(v["name"].as_str().unwrap_or_default())
        .r#type(RrType::from(v["type"].as_str().unwrap_or_default()))
        .set_ttl(v["ttl"].as_i64())
        .set_set_identifier(text(v, "set_identifier"))
        .set_weight(v["weight"].as_i64())
        .set_failover(v["failover"].as_str().map(ResourceRecordSetFailover::from))
        .set_health_check_id(text(v, "health_check_id"))
        .set_region(v["region"].as_str().map(ResourceRecordSetRegion::from))
        .set_multi_value_answer(v["multi_value_answer"].as_bool());
    for value in v["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        set = set.resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(build_err)?,
        );
    }
    let alias = &v["alias_target"];
    if alias.is_object() {
        set = set.alias_target(
            AliasTarget::builder()
                .hosted_zone_id(alias["hosted_zone_id"].as_str().unwrap_or_default())
                .dns_name(alias["dns_name"].as_str().unwrap_or_default())
                .evaluate_target_health(alias["evaluate_target_health"].as_bool().unwrap_or(false))
                .build()
                .map_err(build_err)?,
        );
    }
    let geo = &v["geo_location"];
    if geo.is_object() {
        set = set.geo_location(
            GeoLocation::builder()
                .set_continent_code(text(geo, "continent_code"))
                .set_country_code(text(geo, "country_code"))
                .set_subdivision_code(text(geo, "subdivision_code"))
                .build(),
        );
    }
    let cidr = &v["cidr_routing_config"];
    if cidr.is_object() {
        set = set.cidr_routing_config(
            CidrRoutingConfig::builder()
                .collection_id(cidr["collection_id"].as_str().unwrap_or_default())
                .location_name(cidr["location_name"].as_str().unwrap_or_default())
                .build()
                .map_err(build_err)?,
        );
    }
    let near = &v["geo_proximity_location"];
    if near.is_object() {
        let mut gp = GeoProximityLocation::builder()
            .set_aws_region(text(near, "aws_region"))
            .set_local_zone_group(text(near, "local_zone_group"))
            .set_bias(near["bias"].as_i64().and_then(|n| i32::try_from(n).ok()));
        let at = &near["coordinates"];
        if at.is_object() {
            gp = gp.coordinates(
                Coordinates::builder()
                    .latitude(at["latitude"].as_str().unwrap_or_default())
                    .longitude(at["longitude"].as_str().unwrap_or_default())
                    .build()
                    .map_err(build_err)?,
            );
        }
        set = set.geo_proximity_location(gp.build());
    }
    set.build().map_err(build_err)
}

/// Whether two record sets say the same thing: names compared without the final dot and
/// case, values as a set (Route 53 does not keep their order).
pub fn same(a: &ResourceRecordSet, b: &ResourceRecordSet) -> bool {
    normal(&to_json(a)) == normal(&to_json(b))
}

fn normal(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(name) = v["name"].as_str() {
        v["name"] = name.trim_end_matches('.').to_ascii_lowercase().into();
    }
    if let Some(values) = v["values"].as_array_mut() {
        values.sort_by_key(ToString::to_string);
    }
    if let Some(a) = v.get_mut("alias_target")
        && let Some(dns) = a["dns_name"].as_str()
    {
        a["dns_name"] = dns.trim_end_matches('.').to_ascii_lowercase().into();
    }
    v
}

/// A record set in one line, for messages.
pub fn describe(r: &ResourceRecordSet) -> String {
    let mut out = format!("{} {}", r.name().trim_end_matches('.'), r.r#type().as_str());
    if let Some(a) = r.alias_target() {
        out.push_str(&format!(" ALIAS {}", a.dns_name()));
    } else {
        let values: Vec<&str> = r
            .resource_records()
            .iter()
            .map(ResourceRecord::value)
            .collect();
        out.push_str(&format!(" = [{}]", values.join(", ")));
    }
    if let Some(ttl) = r.ttl() {
        out.push_str(&format!(" TTL {ttl}s"));
    }
    if let Some(w) = r.weight() {
        out.push_str(&format!(" weight {w}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_shape_round_trips() {
        let shapes = [
            json!({"name": "db.example.com.", "type": "CNAME", "ttl": 60, "values": ["a.example.com"]}),
            json!({"name": "w.example.com.", "type": "A", "ttl": 30, "values": ["10.0.0.1", "10.0.0.2"],
                   "set_identifier": "blue", "weight": 70, "health_check_id": "hc-1"}),
            json!({"name": "f.example.com.", "type": "A", "ttl": 30, "values": ["10.0.0.1"],
                   "set_identifier": "primary", "failover": "PRIMARY"}),
            json!({"name": "l.example.com.", "type": "A", "ttl": 30, "values": ["10.0.0.1"],
                   "set_identifier": "use1", "region": "us-east-1"}),
            json!({"name": "g.example.com.", "type": "A", "ttl": 30, "values": ["10.0.0.1"],
                   "set_identifier": "eu", "geo_location": {"continent_code": "EU", "country_code": null, "subdivision_code": null}}),
            json!({"name": "m.example.com.", "type": "A", "ttl": 30, "values": ["10.0.0.1"],
                   "set_identifier": "one", "multi_value_answer": true}),
            json!({"name": "c.example.com.", "type": "A", "ttl": 30, "values": ["10.0.0.1"],
                   "set_identifier": "office", "cidr_routing_config": {"collection_id": "c-1", "location_name": "hq"}}),
            json!({"name": "p.example.com.", "type": "A", "ttl": 30, "values": ["10.0.0.1"],
                   "set_identifier": "near", "geo_proximity_location": {"aws_region": "us-west-2", "local_zone_group": null, "bias": 10,
                   "coordinates": null}}),
            json!({"name": "alias.example.com.", "type": "A",
                   "alias_target": {"hosted_zone_id": "Z2", "dns_name": "lb.example.com.", "evaluate_target_health": true}}),
        ];
        for shape in shapes {
            let set = from_json(&shape).unwrap();
            let back = to_json(&set);
            let again = from_json(&back).unwrap();
            assert_eq!(set, again, "{shape}");
            for (k, v) in shape.as_object().unwrap() {
                assert_eq!(&back[k], v, "{k} of {shape}");
            }
        }
    }
}
