//! Execution of the built-in actions: `shell`, `http.check`, `wait`, `notify`, `noop`.
//! (`approval` is not executed: the engine waits for decisions.)

use std::time::Duration;

use serde_json::{Value, json};

use super::outcome::{ExecContext, Outputs, Resolved, StepError, checked_duration, text};
use super::processes::{ATTEMPT_VAR, GUARD_COMMAND, end_earlier_attempts};

/// Lines of output kept in a step's record.
const TAIL_LINES: usize = 20;

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Sleeps for the `duration` parameter (zero when absent). A zero duration returns at once:
/// the timer rounds every sleep up to its next millisecond tick.
pub async fn sleep_for(args: &Resolved, _ctx: &ExecContext) -> Result<Outputs, StepError> {
    let wait = checked_duration(args, "duration")?.unwrap_or_default();
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    Ok(Outputs::new())
}

/// Runs `argv` without a shell; a non-zero exit code fails the step.
pub async fn shell(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let argv: Vec<String> = args
        .get("argv")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let Some((program, rest)) = argv.split_first() else {
        return Err(StepError::fatal("`argv` is empty"));
    };
    let cwd = text(args, "cwd").map_or_else(|| ctx.base_dir.clone(), |c| ctx.base_dir.join(c));
    // `./script.sh` is relative to the workflow's directory, like `cwd`.
    let program_path = if program.contains('/') && !program.starts_with('/') {
        ctx.base_dir.join(program).display().to_string()
    } else {
        program.clone()
    };
    end_earlier_attempts_of(ctx).await?;
    let mut command = step_command(ctx, &program_path);
    command
        .args(rest)
        .current_dir(&cwd)
        .kill_on_drop(true)
        // Its own process group: what it starts is ended with it (SPEC §5.8.2), and a Ctrl-C
        // at drctl's terminal is drctl's to handle, not the step's.
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(env) = args.get("env").and_then(Value::as_object) {
        for (k, v) in env {
            command.env(k, v.as_str().map_or_else(|| v.to_string(), str::to_string));
        }
    }
    // After the step's own `env`: the mark is drctl's to set.
    if let Some(mark) = &ctx.processes.attempt {
        command.env(ATTEMPT_VAR, mark.value());
    }
    let mut child = command.spawn().map_err(|e| match &ctx.processes.guard {
        Some(drctl) => StepError::fatal(format!(
            "cannot start `{program}` under drctl's step guard ({}) in {}: {e}",
            drctl.display(),
            cwd.display()
        )),
        None => StepError::fatal(format!(
            "cannot start `{program}` in {}: {e}",
            cwd.display()
        )),
    })?;
    // When the attempt is abandoned (its timeout, the run torn down), this future is dropped
    // and the guard ends the whole group: nothing of it runs on beside the next attempt.
    // A step that ends by itself may leave a service it started running on purpose (the
    // local drill starts its standby that way): the guard is disarmed then.
    let mut group = GroupGuard(child.id());
    // Held until the step ends: the guard's stdin closes when this process is gone.
    let lifeline = child.stdin.take();
    let output = child.wait_with_output().await.map_err(|e| {
        StepError::ambiguous(format!("lost track of `{program}` while it ran: {e}"))
    })?;
    drop(lifeline);
    group.0 = None;
    let code = output.status.code();
    let mut outputs = Outputs::new();
    outputs.insert("exit_code".into(), code.map_or(Value::Null, Into::into));
    outputs.insert("stdout_tail".into(), tail(&output.stdout).into());
    if output.status.success() {
        Ok(outputs)
    } else {
        let stderr = tail(&output.stderr);
        let how = code.map_or_else(
            || "was killed by a signal".to_string(),
            |c| format!("exited with code {c}"),
        );
        Err(StepError::fatal(if stderr.is_empty() {
            format!("`{}` {how}", argv.join(" "))
        } else {
            format!("`{}` {how}: {stderr}", argv.join(" "))
        }))
    }
}

/// Ends what earlier attempts of the step left running (their driver died and their guard
/// could not end them), before this one starts: two attempts of a step never run at once
/// (SPEC §5.8.9). Refuses to start when they cannot be ended.
async fn end_earlier_attempts_of(ctx: &ExecContext) -> Result<(), StepError> {
    let Some(mark) = ctx.processes.attempt.as_ref().filter(|m| m.attempt > 1) else {
        return Ok(());
    };
    let alive = end_earlier_attempts(mark).await;
    if alive.is_empty() {
        return Ok(());
    }
    Err(StepError::no_effect(format!(
        "processes of an earlier attempt of `{}` are still running and could not be ended (pid {}); end them, then resume",
        mark.step,
        alive
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The command that starts `program`: under drctl's step guard when the driver knows its
/// binary, which ends the step's process group when the driver dies, even by `kill -9`
/// (SPEC §5.8.9). The guard watches its stdin, a pipe whose other end only this process
/// holds, as well as its parent-death signal; it gives the step no stdin, as without it.
fn step_command(ctx: &ExecContext, program: &str) -> tokio::process::Command {
    match &ctx.processes.guard {
        Some(drctl) => {
            let mut command = tokio::process::Command::new(drctl);
            command
                .arg(GUARD_COMMAND)
                .arg("--")
                .arg(program)
                .stdin(std::process::Stdio::piped());
            command
        }
        None => {
            let mut command = tokio::process::Command::new(program);
            command.stdin(std::process::Stdio::null());
            command
        }
    }
}

/// Kills a shell step's whole process group when dropped.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // The group may be gone already (the step ended): nothing to do then.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// One request; the status and body, or a connection error.
fn request(
    method: &str,
    url: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let agent = agent(timeout);
    let result = match (method, body) {
        ("POST", Some(b)) => agent
            .post(url)
            .header("content-type", "application/json")
            .send(b),
        ("POST", None) => agent.post(url).send_empty(),
        ("PUT", _) => agent.put(url).send_empty(),
        ("HEAD", _) => agent.head(url).call(),
        ("OPTIONS", _) => agent.options(url).call(),
        _ => agent.get(url).call(),
    };
    let mut response = result.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Ok((status, body))
}

/// Polls `url` until it answers the expected status (and body), or the driver's timeout ends
/// the attempt.
pub async fn http_check(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let url = text(args, "url").unwrap_or_default().to_string();
    let method = text(args, "method").unwrap_or("GET").to_string();
    let expect = args
        .get("expect_status")
        .and_then(Value::as_u64)
        .unwrap_or(200);
    let contains = text(args, "expect_body_contains").map(str::to_string);
    let interval = checked_duration(args, "interval")?.unwrap_or(Duration::from_secs(5));
    // Without a step timeout, give up after five minutes rather than poll forever.
    let deadline = tokio::time::Instant::now() + ctx.timeout.unwrap_or(Duration::from_mins(5));
    loop {
        let per_request = interval.clamp(Duration::from_secs(1), Duration::from_secs(10));
        let (u, m) = (url.clone(), method.clone());
        let answer = tokio::task::spawn_blocking(move || request(&m, &u, None, per_request))
            .await
            .map_err(|e| StepError::fatal(format!("HTTP check of {url} could not run: {e}")))?;
        let last = match answer {
            Ok((status, body))
                if u64::from(status) == expect
                    && contains.as_ref().is_none_or(|c| body.contains(c.as_str())) =>
            {
                let mut outputs = Outputs::new();
                outputs.insert("status".into(), status.into());
                return Ok(outputs);
            }
            Ok((status, _)) if u64::from(status) == expect => format!(
                "status {status} but the body lacks \"{}\"",
                contains.as_deref().unwrap_or_default()
            ),
            Ok((status, _)) => format!("status {status}, expected {expect}"),
            Err(e) => format!("no answer: {e}"),
        };
        if tokio::time::Instant::now() + interval > deadline {
            return Err(StepError::no_effect(format!(
                "{method} {url} was not healthy in time (last: {last})"
            )));
        }
        tokio::time::sleep(interval).await;
    }
}

/// POSTs a Slack-compatible JSON message to the webhook.
pub async fn notify(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let url = text(args, "url").unwrap_or_default().to_string();
    let mut body = json!({ "text": text(args, "message").unwrap_or_default() });
    if let Some(channel) = text(args, "channel") {
        body["channel"] = channel.into();
    }
    let timeout = ctx
        .timeout
        .unwrap_or(Duration::from_secs(30))
        .min(Duration::from_secs(30));
    let u = url.clone();
    let answer =
        tokio::task::spawn_blocking(move || request("POST", &u, Some(body.to_string()), timeout))
            .await
            .map_err(|e| {
                StepError::fatal(format!("notification to the webhook could not run: {e}"))
            })?;
    // The webhook URL often holds a secret: name only its host in errors.
    let host = url.split('/').nth(2).unwrap_or("the webhook").to_string();
    match answer {
        Ok((status, _)) if (200..300).contains(&status) => Ok(Outputs::new()),
        Ok((status, body)) if status == 429 => Err(StepError::no_effect(format!(
            "webhook at {host} answered {status}: {}",
            body.trim()
        ))),
        // A 5xx may come after the message was posted: it is not proof of no effect.
        Ok((status, body)) if status >= 500 => Err(StepError::ambiguous(format!(
            "webhook at {host} answered {status}: {}",
            body.trim()
        ))),
        Ok((status, body)) => Err(StepError::fatal(format!(
            "webhook at {host} refused the message ({status}): {}",
            body.trim()
        ))),
        Err(e) => Err(StepError::ambiguous(format!(
            "webhook at {host} could not be reached: {}",
            e.replace(&url, &host)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dir: &std::path::Path) -> ExecContext {
        ExecContext {
            base_dir: dir.to_path_buf(),
            timeout: None,
            aws: std::sync::Arc::new(crate::aws::AwsContext::new(None)),
            incident_start: chrono::Utc::now(),
            previous: None,
            remember: None,
            processes: crate::actions::processes::StepProcesses::default(),
        }
    }

    #[tokio::test]
    async fn an_abandoned_shell_attempt_ends_its_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("late");
        let mut args = Resolved::new();
        args.insert(
            "argv".into(),
            json!([
                "sh",
                "-c",
                format!("(sleep 1; echo late > {}) & sleep 30", late.display())
            ]),
        );
        let context = ctx(dir.path());
        let attempt = shell(&args, &context);
        // The driver's timeout drops the attempt like this.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), attempt)
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!late.exists(), "a child of the timed-out attempt ran on");
    }
}
