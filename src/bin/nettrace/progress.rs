//! The progress line on stderr while a body downloads: shown only when stderr is a
//! terminal and the download has taken more than a second, redrawn in place, and cleared
//! when the download ends (or is cut short).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use http::HeaderMap;

/// Downloads shorter than this show no progress line.
const QUIET_FOR: Duration = Duration::from_secs(1);
/// The line is redrawn at most this often.
const REDRAW: Duration = Duration::from_millis(200);

/// The progress of one body.
pub(crate) struct Progress {
    enabled: bool,
    total: Option<u64>,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    /// A progress line for a body of the length in `headers` (if they say it), shown
    /// only when `shown` (not with `-s`) and stderr is a terminal.
    pub(crate) fn new(headers: &HeaderMap, shown: bool) -> Progress {
        let total = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Progress {
            enabled: shown && std::io::stderr().is_terminal(),
            total,
            started: Instant::now(),
            drawn: None,
        }
    }

    /// `bytes` of the body have arrived.
    pub(crate) fn update(&mut self, bytes: u64) {
        if !self.enabled {
            return;
        }
        let elapsed = self.started.elapsed();
        if elapsed < QUIET_FOR || self.drawn.is_some_and(|at| at.elapsed() < REDRAW) {
            return;
        }
        self.drawn = Some(Instant::now());
        let text = format!("\r{}\x1b[K", line(bytes, self.total, elapsed));
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    /// The download ended: the line goes away.
    pub(crate) fn finish(&mut self) {
        if self.drawn.take().is_some() {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One progress line: bytes so far (of the total, with the share, when known), the
/// mean rate, and the time so far (and left, when the total is known).
pub(crate) fn line(bytes: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
    match total {
        Some(total) if total > 0 => {
            let share = (bytes as f64 / total as f64 * 100.0).min(100.0);
            let left = if rate > 0.0 {
                clock(Duration::from_secs_f64(
                    total.saturating_sub(bytes) as f64 / rate,
                ))
            } else {
                "--:--".to_owned()
            };
            format!(
                "{} of {} {share:3.0}%  {}/s  {} elapsed, {left} left",
                size(bytes),
                size(total),
                size(rate as u64),
                clock(elapsed),
            )
        }
        _ => format!(
            "{}  {}/s  {} elapsed",
            size(bytes),
            size(rate as u64),
            clock(elapsed)
        ),
    }
}

/// Bytes in binary units with one decimal: `512 B`, `1.5 KiB`, `100.0 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `m:ss`, or `h:mm:ss` from an hour on.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_length_shows_share_rate_and_time_left() {
        let mib = 1024 * 1024;
        assert_eq!(
            line(25 * mib, Some(100 * mib), Duration::from_secs(5)),
            "25.0 MiB of 100.0 MiB  25%  5.0 MiB/s  0:05 elapsed, 0:15 left"
        );
        assert_eq!(
            line(100 * mib, Some(100 * mib), Duration::from_millis(2500)),
            "100.0 MiB of 100.0 MiB 100%  40.0 MiB/s  0:02 elapsed, 0:00 left"
        );
    }

    #[test]
    fn an_unknown_length_shows_bytes_and_rate() {
        assert_eq!(
            line(1536, None, Duration::from_secs(2)),
            "1.5 KiB  768 B/s  0:02 elapsed"
        );
        assert_eq!(line(0, None, Duration::ZERO), "0 B  0 B/s  0:00 elapsed");
        assert_eq!(
            line(0, Some(10), Duration::from_secs(3700)),
            "0 B of 10 B   0%  0 B/s  1:01:40 elapsed, --:-- left"
        );
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
