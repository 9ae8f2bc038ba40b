//! The incident room in a real browser (SPEC §12): headless Chromium, driven through its
//! driver (`chromedriver`, started on a free loopback port and killed by pid after), opens the pages and checks what a person would see: the graph, a step turning from
//! `awaiting_approval` to `succeeded` after a signed vote uploaded through the page with no
//! reload, a forged or edited vote's refusal in its own words, and the runs page showing a
//! new run as it starts. `screenshot_of_a_run_page_mid_run` (ignored; `scripts/screenshot-room`)
//! saves the picture in docs/.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::room::{Room, wait_for};

/// `chromedriver` on a free loopback port, killed with everything it started when dropped.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: the browser it starts is killed with it.
            .process_group(0)
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let driver = Driver {
            child,
            port,
            profile: tempfile::tempdir().unwrap(),
        };
        wait_for(Duration::from_secs(20), "chromedriver to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        driver
    }

    /// A headless Chromium session.
    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-sync",
                    "--disable-component-update", "--window-size=1280,900",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-i32::try_from(self.child.id()).expect("pid"));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Runs `test` with a browser, on a runtime of its own; the session is closed after.
fn with_browser<F>(test: impl FnOnce(Client) -> F)
where
    F: std::future::Future<Output = Client>,
{
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = driver.browser().await;
        let client = test(client).await;
        client.close().await.expect("the session closes");
    });
}

/// The attribute `name` of the element at `css`.
async fn attr(client: &Client, css: &str, name: &str) -> Option<String> {
    client
        .find(Locator::Css(css))
        .await
        .ok()?
        .attr(name)
        .await
        .ok()?
}

/// Waits until the element at `css` has `name` = `value`.
/// The text of the element `css` finds, when there is one.
async fn text_of(client: &Client, css: &str) -> Option<String> {
    client.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn until_attr(client: &Client, css: &str, name: &str, value: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = attr(client, css, name).await;
        if now.as_deref() == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} {name} is {now:?}, not {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Uploads `file` through the run page's form; the answer shown.
async fn upload(client: &Client, file: &std::path::Path) -> (String, String) {
    client
        .execute(
            "document.getElementById('vote-answer').textContent = ''; return null;",
            vec![],
        )
        .await
        .unwrap();
    let input = client.find(Locator::Css("#vote-file")).await.unwrap();
    input.send_keys(&file.display().to_string()).await.unwrap();
    client
        .find(Locator::Css("#vote button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = client.find(Locator::Css("#vote-answer")).await.unwrap();
        let text = answer.text().await.unwrap();
        if !text.is_empty() {
            return (
                text,
                answer.attr("data-ok").await.unwrap().unwrap_or_default(),
            );
        }
        assert!(Instant::now() < deadline, "no answer to the upload");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the browser, step by step"
)]
fn the_run_page_draws_the_graph_and_a_vote_uploaded_through_it_turns_the_gate_live() {
    let room = Room::open(&[]);
    let run = room.start();
    let forged = room.sign(&run, "bob", "mallory", "forged.json");
    let forged_cli = room
        .drctl
        .run(&["approve", "--signed", &forged.display().to_string()])
        .text();
    let good = room.sign(&run, "bob", "bob", "bob.json");
    let edited = room.path("edited.json");
    std::fs::write(
        &edited,
        std::fs::read_to_string(&good)
            .unwrap()
            .replace("\"bob\"", "\"carol\""),
    )
    .unwrap();
    with_browser(|client| async move {
        client
            .goto(&format!("{}/runs/{run}", room.url))
            .await
            .unwrap();
        // The graph: every step a node with its status, the critical path marked.
        let nodes = client
            .find_all(Locator::Css("svg#dag g.step"))
            .await
            .unwrap();
        assert_eq!(nodes.len(), 3);
        until_attr(
            &client,
            "g.step[data-step='snapshot']",
            "data-status",
            "succeeded",
            Duration::from_secs(5),
        )
        .await;
        until_attr(
            &client,
            "g.step[data-step='gate']",
            "data-status",
            "awaiting_approval",
            Duration::from_secs(5),
        )
        .await;
        assert!(
            !client
                .find_all(Locator::Css("g.step.critical"))
                .await
                .unwrap()
                .is_empty()
        );
        // Marks this very document: after the vote it must still be here (no reload).
        client
            .execute("window.drctlNoReload = true; return null;", vec![])
            .await
            .unwrap();

        // A forged vote: refused on the page in the refusal's own words; nothing changes.
        let (text, ok) = upload(&client, &forged).await;
        assert_eq!(ok, "no", "{text}");
        assert!(
            forged_cli.contains(text.trim()),
            "the page says {text:?}; the command said {forged_cli:?}"
        );
        let (text, ok) = upload(&client, &edited).await;
        assert_eq!(ok, "no", "{text}");
        assert_eq!(
            attr(&client, "g.step[data-step='gate']", "data-status")
                .await
                .as_deref(),
            Some("awaiting_approval")
        );

        let projected = text_of(&client, "#rto-projection").await;
        assert!(
            projected
                .as_deref()
                .is_some_and(|p| p.starts_with("projected ")),
            "the RTO is projected while the gate waits: {projected:?}"
        );

        // Bob's signed vote: the gate, then the step after it, turn succeeded live, and the
        // header's status follows the run.
        let (text, ok) = upload(&client, &good).await;
        assert_eq!(ok, "yes", "{text}");
        for css in [
            "g.step[data-step='gate']",
            "g.step[data-step='promote']",
            "#run-status",
        ] {
            until_attr(
                &client,
                css,
                "data-status",
                "succeeded",
                Duration::from_secs(10),
            )
            .await;
        }
        // Recovered: nothing is projected any more, the clock stopped.
        let deadline = Instant::now() + Duration::from_secs(10);
        while text_of(&client, "#rto-projection").await.is_some() {
            assert!(Instant::now() < deadline, "the projection stayed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let same = client
            .execute("return window.drctlNoReload === true;", vec![])
            .await
            .unwrap();
        assert_eq!(same, serde_json::Value::Bool(true), "the page was reloaded");
        let timeline = text_of(&client, "#timeline").await.unwrap_or_default();
        assert!(timeline.contains("bob"), "{timeline}");
        client
    });
}

#[test]
fn the_runs_page_shows_a_new_run_as_it_starts() {
    let room = Room::open(&[]);
    let first = room.start();
    let room_url = room.url.clone();
    with_browser(|client| async move {
        client.goto(&format!("{room_url}/")).await.unwrap();
        client
            .find(Locator::Css(&format!("tr[data-run='{first}']")))
            .await
            .expect("the first run is listed");
        client
            .execute("window.drctlNoReload = true; return null;", vec![])
            .await
            .unwrap();
        // Its gate passed, a second run of the workflow starts.
        let vote = room.sign(&first, "carol", "carol", "carol.json");
        room.drctl
            .run(&["approve", "--signed", &vote.display().to_string()])
            .ok();
        // One unfinished run per workflow: the first ends before the second starts.
        wait_for(Duration::from_secs(20), "the first run to succeed", || {
            room.drctl
                .run(&["status", &first, "--format", "json"])
                .json()["status"]
                == "succeeded"
        });
        // Its row follows it: its status, and its RTO achieved against the objective.
        until_attr(
            &client,
            &format!("tr[data-run='{first}'] td.status"),
            "data-status",
            "succeeded",
            Duration::from_secs(10),
        )
        .await;
        let text = |css: String| {
            let client = client.clone();
            async move {
                client
                    .find(Locator::Css(&css))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        let rto = text(format!("tr[data-run='{first}'] td.rto")).await;
        assert!(rto.ends_with(" of 15m"), "{rto}");
        let second = room.start();
        let row = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(&format!("tr[data-run='{second}']")))
            .await
            .expect("the new run appears without a reload");
        assert!(row.text().await.unwrap().contains("room-failover"));
        // A row that appears live says who drives the run and its RTO, as a row drawn with
        // the page does.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let driver = text(format!("tr[data-run='{second}'] td.driver")).await;
            let rto = text(format!("tr[data-run='{second}'] td.rto")).await;
            if driver.starts_with("this agent (pid ") && rto.contains("15m") {
                break;
            }
            assert!(Instant::now() < deadline, "driver {driver:?}, RTO {rto:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let same = client
            .execute("return window.drctlNoReload === true;", vec![])
            .await
            .unwrap();
        assert_eq!(same, serde_json::Value::Bool(true));
        client
    });
}

/// Saves a screenshot of a run page mid-run (its gate waiting) as `docs/incident-room.png`.
#[test]
#[ignore = "writes docs/incident-room.png: run by scripts/screenshot-room"]
fn screenshot_of_a_run_page_mid_run() {
    let room = Room::open(&[]);
    let run = room.start();
    let out = crate::harness::root().join("docs/incident-room.png");
    with_browser(|client| async move {
        client
            .goto(&format!("{}/runs/{run}", room.url))
            .await
            .unwrap();
        until_attr(
            &client,
            "g.step[data-step='gate']",
            "data-status",
            "awaiting_approval",
            Duration::from_secs(5),
        )
        .await;
        let png = client.screenshot().await.unwrap();
        std::fs::write(&out, png).unwrap();
        client
    });
}
