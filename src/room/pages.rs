//! The room's HTML, written with maud (which escapes every value it is given): the runs page,
//! the run page with its DAG as inline SVG, and the page that asks for the token. No inline
//! script or style: the page's behaviour is `/static/room.js`, its look `/static/room.css`.

use maud::{DOCTYPE, Markup, html};

use super::graph::{Graph, NODE_H, NODE_W};
use super::model::{RunPage, projected_words};
use super::rows::{RunRow, objective};

/// A page: its title and body, the room's style and script.
fn layout(title: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · drctl" }
                link rel="stylesheet" href="/static/room.css";
                script src="/static/room.js" defer {}
            }
            body { (body) }
        }
    }
}

/// `/`: every run of the store.
pub fn runs_page(rows: &[RunRow]) -> String {
    let body = html! {
        header { h1 { "Incident room" } p.muted { "every run of the store, live" } }
        table #runs data-live="runs" {
            thead { tr { th { "run" } th { "workflow" } th { "mode" } th { "status" } th { "started" } th { "RTO" } th { "driven by" } } }
            tbody {
                @for row in rows {
                    tr data-run=(row.line.run_id) {
                        td { a href={ "/runs/" (row.line.run_id) } { (row.line.run_id) } }
                        td { (row.line.workflow) }
                        td { (row.line.mode) }
                        td.status data-status=(row.line.status) { (row.line.status) }
                        td { (row.line.started_at) }
                        td.rto { (row.rto) }
                        td.driver { (row.driver) }
                    }
                }
            }
        }
    };
    layout("runs", &body).into_string()
}

/// `/runs/RUN`.
pub fn run_page(page: &RunPage) -> String {
    let s = &page.status;
    let r = &page.report;
    let body = html! {
        header {
            p { a href="/" { "← every run" } }
            h1 { "Run " (s.run_id) }
            p {
                (s.workflow) " · " (s.mode) " · started " (s.started_at) " by " (s.initiator)
                @if let Some(owner) = &s.driven_by { " · driven by " (owner.name) " (pid " (owner.pid) ")" }
            }
            p { "status " strong #run-status data-status=(s.status) { (s.status) } }
            @if let Some(reason) = &s.paused_reason { p.paused { (reason) } }
        }
        section #clocks {
            div.clock #rto data-since=[r.incident_start.as_ref().or(Some(&r.started_at)).filter(|_| r.recovered_at.is_none() && r.finished_at.is_none())] {
                h2 { "RTO" }
                p.big #rto-elapsed { (objective(&r.rto)) }
                @if let Some(p) = &page.projection {
                    p #rto-projection data-at-risk=(p.at_risk()) { (projected_words(p)) }
                }
                @if let Some(at) = &r.rto_breached_at { p.breach { "objective passed at " (at) } }
            }
            div.clock #rpo { h2 { "RPO" } p.big { (objective(&r.rpo)) } }
        }
        @if !page.waiting.is_empty() {
            section #approvals {
                h2 { "Approvals waiting" }
                @for w in &page.waiting {
                    div.approval data-step=(w.step) {
                        p { strong { (w.step) } " — " (w.quorum) " of " (w.approvers.join(", ")) }
                        @if let Some(m) = &w.message { p { (m) } }
                        pre.command { "drctl approve " (s.run_id) " " (w.step) " --as NAME --key PATH" }
                    }
                }
                form #vote action={ "/runs/" (s.run_id) "/votes" } method="post" {
                    label { "Signed decision (" code { "drctl approve … --sign-only -o FILE" } "): " input #vote-file type="file" name="file"; }
                    button type="submit" { "Submit" }
                }
                p #vote-answer role="status" {}
            }
        }
        section #graph { h2 { "Steps" } (svg(&page.graph)) }
        section {
            h2 { "Timeline" }
            ol #timeline data-run=(s.run_id) data-next=(page.next) {
                @for line in &page.timeline { li data-seq=(line.seq) { time { (line.at) } " " (line.text) } }
            }
        }
        footer {
            a href={ "/runs/" (s.run_id) "/report" } { "HTML report" } " · "
            a href={ "/runs/" (s.run_id) "/evidence" } download { "evidence file" } " · "
            a href={ "/api/runs/" (s.run_id) } { "JSON" }
        }
    };
    page.redactor
        .scrub(&layout(&format!("run {}", s.run_id), &body).into_string())
}

/// The DAG as inline SVG: a box per step with `data-step` and `data-status`.
fn svg(graph: &Graph) -> Markup {
    html! {
        svg #dag xmlns="http://www.w3.org/2000/svg" width=(graph.width) height=(graph.height) viewBox={ "0 0 " (graph.width) " " (graph.height) } role="img" aria-label="the run's steps by wave" {
            @for e in &graph.edges {
                path class=(if e.critical { "edge critical" } else { "edge" })
                    d={ "M" (e.from.0) "," (e.from.1) " C" (e.from.0 + 28) "," (e.from.1) " " (e.to.0.saturating_sub(28)) "," (e.to.1) " " (e.to.0) "," (e.to.1) } {}
            }
            @for n in &graph.nodes {
                g class={ "step" @if n.critical { " critical" } @if n.approval { " approval" } } data-step=(n.id) data-status=(n.status) transform={ "translate(" (n.x) "," (n.y) ")" } {
                    title { (n.id) " (" (n.action) "): " (n.status) }
                    rect width=(NODE_W) height=(NODE_H) rx="5" {}
                    text x="8" y="14" { (n.id) }
                    text.sub x="8" y=(NODE_H - 7) { (n.status) }
                }
            }
        }
    }
}

/// The page that asks for the room's token, once: it is kept in a cookie.
pub fn token_page(wrong: bool) -> String {
    let body = html! {
        h1 { "Incident room" }
        p { "This room needs its token (the file given to " code { "drctl serve --http-token-file" } ")." }
        @if wrong { p.refusal { "That token is not the room's." } }
        form method="post" action="/login" {
            input type="password" name="token" autocomplete="off" autofocus;
            button type="submit" { "Enter" }
        }
    };
    layout("token", &body).into_string()
}
