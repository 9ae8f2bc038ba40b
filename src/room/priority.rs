//! The room's threads yield the processor to the runs': they run at a lower priority than the
//! rest of the agent (nice [`NICE`]). On a busy machine a page or an event stream then waits
//! for a step to be recorded, never the other way round; on an idle one nothing changes.

use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};

/// The niceness the room's threads run at (the runs' threads keep the process's, 0 unless
/// drctl was started niced).
pub const NICE: i32 = 10;

/// `NICE` as the priority crate takes it: its 0–99 scale is mapped onto niceness 19 to -20.
const PRIORITY: u8 = 22;

/// Lowers the calling thread's priority to the room's; a thread already at that niceness or
/// beyond (drctl started niced) is left as it is: the room never runs ahead of the runs. A
/// system that does not let it (a sandbox without `setpriority`) leaves it as it is too, and
/// the log says so.
pub fn lower() {
    if niceness().is_some_and(|now| now >= NICE) {
        return;
    }
    let lowered = ThreadPriorityValue::try_from(PRIORITY)
        .map_err(|e| e.clone())
        .and_then(|p| {
            set_current_thread_priority(ThreadPriority::Crossplatform(p))
                .map_err(|e| format!("{e:?}"))
        });
    if let Err(e) = lowered {
        tracing::debug!(error = %e, nice = NICE, "the incident room's thread keeps its priority");
    }
}

/// The calling thread's niceness, from `/proc` (field 19 of stat(5)), when it can be read.
fn niceness() -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(16)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_thread_runs_at_the_room_s_niceness_and_the_others_keep_theirs() {
        let before = niceness().unwrap();
        let lowered = std::thread::spawn(|| {
            lower();
            niceness().unwrap()
        })
        .join()
        .unwrap();
        // Niced further when drctl itself runs niced beyond the room's niceness: left there.
        assert_eq!(lowered, NICE.max(before));
        assert_eq!(
            niceness(),
            Some(before),
            "only the room's thread is lowered"
        );
    }
}
