//! Generated workflows of any size, for benchmarks and property tests. Deterministic for a
//! given seed, so a figure can be reproduced.

use std::fmt::Write;

/// A small deterministic generator (SplitMix64): enough for shapes, no dependency needed.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n as u64)).unwrap_or(0)
    }
}

/// A valid workflow of `steps` steps: a realistic mix of actions (checks, shell commands with
/// compensations, DNS changes reading an earlier step's output, approvals before the
/// irreversible ones), each step needing up to three earlier ones.
pub fn large_workflow(steps: usize, seed: u64) -> String {
    let mut rng = SplitMix::new(seed);
    let mut out = String::with_capacity(steps * 160);
    out.push_str(
        "[workflow]\nname = \"generated\"\nkind = \"failover\"\nrto = \"720h\"\nconcurrency = 64\n\n\
         [params]\nregion = \"us-west-2\"\nzone_id = \"Z0123456789\"\n\n\
         [defaults]\ntimeout = \"10m\"\nretry = { attempts = 3, initial = \"1s\", max = \"30s\" }\n\n",
    );
    let mut last_approval: Option<usize> = None;
    for i in 0..steps {
        let _ = writeln!(out, "[[steps]]\nid = \"s{i}\"");
        let mut needs: Vec<usize> = Vec::new();
        if i > 0 {
            for _ in 0..=rng.below(3) {
                needs.push(i - 1 - rng.below(i.min(50)));
            }
        }
        match i % 10 {
            0 => {
                out.push_str("action = \"approval\"\nwith = { approvers = [\"sre-lead\", \"dba\"], timeout = \"30m\" }\n");
                last_approval = Some(i);
            }
            1 | 2 => {
                let _ = writeln!(
                    out,
                    "action = \"http.check\"\nwith = {{ url = \"https://svc{i}.example.com/health\", expect_status = 200 }}"
                );
            }
            3 => {
                out.push_str("action = \"rds.promote_read_replica\"\nwith = { region = \"${params.region}\", db_instance = \"db-replica\" }\n");
            }
            4 if last_approval.is_some() && i >= 1 && (i - 1) % 10 == 3 => {
                let _ = writeln!(
                    out,
                    "action = \"route53.upsert_record\"\nwith = {{ zone_id = \"${{params.zone_id}}\", name = \"db{i}.example.com\", type = \"CNAME\", ttl = 60, values = [\"${{steps.s{}.outputs.endpoint}}\"] }}",
                    i - 1
                );
            }
            5 | 6 => {
                let _ = writeln!(
                    out,
                    "action = \"shell\"\nwith = {{ argv = [\"scale\", \"svc{i}\", \"6\"] }}\nrollback = {{ action = \"shell\", with = {{ argv = [\"scale\", \"svc{i}\", \"0\"] }} }}"
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "action = \"noop\"\nwith = {{ duration = \"{}s\" }}",
                    1 + rng.below(30)
                );
            }
        }
        // Irreversible steps come after the latest approval, as a careful author writes them.
        if i % 10 == 3
            && let Some(a) = last_approval
        {
            needs.push(a);
        }
        needs.sort_unstable();
        needs.dedup();
        if !needs.is_empty() {
            let list: Vec<String> = needs.iter().map(|n| format!("\"s{n}\"")).collect();
            let _ = writeln!(out, "needs = [{}]", list.join(", "));
        }
        if i + 1 == steps {
            out.push_str("marks = \"recovered\"\n");
        }
        let _ = writeln!(out, "estimate = \"{}s\"\n", 1 + rng.below(60));
    }
    out
}
