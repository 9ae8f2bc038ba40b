//! Where an etcd store is: `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`.

/// Where an etcd store is: its members and its key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdAddress {
    /// `host:port` of each member.
    pub endpoints: Vec<String>,
    /// The key prefix, without a trailing slash.
    pub prefix: String,
}

impl EtcdAddress {
    /// Reads `etcd://h1:2379,h2:2379/prefix`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("etcd://").ok_or_else(|| {
            format!("`{url}` is not a store drctl knows: write sled:DIR or etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
        })?;
        let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, "drctl"));
        let endpoints: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        if endpoints.is_empty() {
            return Err(format!("`{url}` names no etcd member"));
        }
        if let Some(bad) = endpoints.iter().find(|h| !h.contains(':')) {
            return Err(format!("`{bad}` in `{url}` has no port (HOST:PORT)"));
        }
        let prefix = prefix.trim_matches('/');
        Ok(Self {
            endpoints,
            prefix: if prefix.is_empty() {
                "/drctl".into()
            } else {
                format!("/{prefix}")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::EtcdAddress;

    #[test]
    fn store_urls_name_their_members_and_prefix() {
        let a = EtcdAddress::parse("etcd://h1:2379,h2:2379/dr/ctl/").unwrap();
        assert_eq!(a.endpoints, ["h1:2379", "h2:2379"]);
        assert_eq!(a.prefix, "/dr/ctl");
        assert_eq!(
            EtcdAddress::parse("etcd://h1:2379").unwrap().prefix,
            "/drctl"
        );
        assert_eq!(
            EtcdAddress::parse("etcd://h1:2379/").unwrap().prefix,
            "/drctl"
        );
        for bad in ["h1:2379", "etcd:///x", "etcd://h1/x", "sled:/tmp"] {
            assert!(EtcdAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
