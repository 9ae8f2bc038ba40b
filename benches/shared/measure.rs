//! What the benchmarks measure with: medians, the machine's raw write+fdatasync (each figure is
//! given beside it), and milliseconds in words.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// The median of `times`.
pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The median of 200 appends of 256 bytes, each followed by fdatasync, in `dir`.
pub fn raw_fsync(dir: &Path) -> Duration {
    let mut file = std::fs::File::create(dir.join("raw")).unwrap();
    median(
        (0..200)
            .map(|_| {
                let t = Instant::now();
                file.write_all(&[7u8; 256]).unwrap();
                file.sync_data().unwrap();
                t.elapsed()
            })
            .collect(),
    )
}

/// `d` in milliseconds, one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
