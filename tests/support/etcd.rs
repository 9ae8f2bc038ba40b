//! A real three-member etcd cluster on 127.0.0.1, for the store tests: free ports, each
//! member's data in a temporary directory, every process killed by its pid when the cluster is
//! dropped. Needs Debian's `etcd-server` (the `etcd` binary), which `.ci/run` installs.
//!
//! The members allow larger requests than etcd's defaults (`--max-request-bytes` 32 MiB,
//! `--max-txn-ops` 1024): a commit that starts a thousand steps at once is one transaction.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member's ports and process.
struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// One cluster at a time: three etcd members and the drctl processes around them are a lot
/// for a small machine, and elections under contention would make the tests about the
/// machine rather than drctl.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A three-member cluster.
pub struct Cluster {
    _turn: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    members: Vec<Member>,
    initial: String,
    token: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Cluster {
    /// Starts three members and waits until the cluster has a leader.
    pub fn start() -> Cluster {
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().expect("tempdir");
        let members: Vec<Member> = (0..3)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("drctl-{}", std::process::id());
        let mut cluster = Cluster {
            _turn: turn,
            dir,
            members,
            initial,
            token,
        };
        for i in 0..3 {
            cluster.start_member(i);
        }
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.members[i].name)
    }

    /// Starts member `i` (again, on its data, after a kill).
    pub fn start_member(&mut self, i: usize) {
        let m = &self.members[i];
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", m.name)))
            .expect("log file");
        let child = Command::new("etcd")
            .args([
                "--name",
                &m.name,
                "--data-dir",
                self.data_dir(i).to_str().expect("path"),
                "--listen-client-urls",
                &format!("http://127.0.0.1:{}", m.client),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{}", m.client),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", m.peer),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{}", m.peer),
                "--initial-cluster",
                &self.initial,
                "--initial-cluster-token",
                &self.token,
                "--initial-cluster-state",
                "new",
                "--heartbeat-interval",
                "100",
                "--election-timeout",
                "1000",
                "--max-request-bytes",
                "33554432",
                "--max-txn-ops",
                "1024",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts (Debian package etcd-server)");
        self.members[i].child = Some(child);
    }

    /// Kills member `i` (SIGKILL) and reaps it.
    pub fn kill_member(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The cluster's client endpoints, `host:port,host:port,host:port`.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The process ids of the members running now.
    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|m| m.child.as_ref().map(Child::id))
            .collect()
    }

    /// The URL of each running member's client port (`/metrics`, `/health` are there).
    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| format!("http://127.0.0.1:{}", m.client))
            .collect()
    }

    /// A store URL on this cluster under `prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.endpoints())
    }

    /// Waits until some member answers `/health` with a leader.
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let healthy = self.members.iter().filter(|m| m.child.is_some()).any(|m| {
                ureq::get(&format!("http://127.0.0.1:{}/health", m.client))
                    .call()
                    .ok()
                    .and_then(|mut r| r.body_mut().read_to_string().ok())
                    .is_some_and(|b| b.contains("\"true\""))
            });
            if healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the etcd cluster did not become healthy; logs in {}",
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill_member(i);
        }
    }
}
