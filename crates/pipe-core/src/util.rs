//! Small helpers shared by every module: UTC timestamps without a date
//! library, human-readable sizes and durations, and I/O errors that always
//! name their path.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::fsx::{IoContext, PathError};

/// Seconds since the Unix epoch as a civil UTC date-time: `(y, mo, d, h, mi, s)`.
fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// RFC 3339 UTC timestamp, second precision: `2026-11-29T23:45:01Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(unix_secs(t));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Compact UTC stamp for run ids: `20261129-234501`.
pub fn compact_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(unix_secs(t));
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// Parses the timestamps written by [`rfc3339`] back into a `SystemTime`.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y_adj = if mo <= 2 { y - 1 } else { y };
    let era = y_adj.div_euclid(400);
    let yoe = y_adj - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs).ok().map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Parses an age such as `30s`, `15m`, `12h`, `7d` or `2w`.
pub fn parse_age(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(mult)?))
}

/// `1536` -> `1.5 KiB`.
/// `text` usable as a file name: every character but ASCII letters, digits
/// and those in `keep` made `_` (stage names of variants carry `[`, `]`, `=`).
pub fn file_safe(text: &str, keep: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || keep.contains(c) { c } else { '_' }).collect()
}

/// `text` safe for a terminal: control characters other than newline and
/// tab (an ANSI escape in a file name, a carriage return in a program's
/// output) written as `\u{1b}`, so a hostile name cannot rewrite the screen.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| if c.is_control() && c != '\n' && c != '\t' { c.escape_unicode().to_string() } else { c.to_string() })
            .collect(),
    )
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, so a
/// reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PathError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    crate::fsx::create_dir_all(parent).map_err(|e| e.doing("create folder"))?;
    let tmp = parent.join(format!(".{}.tmp.{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("file"), std::process::id()));
    crate::fsx::write(&tmp, bytes)?;
    crate::fsx::rename(&tmp, path)
}

#[cfg(test)]
mod printable_tests {
    #[test]
    fn control_characters_are_written_out() {
        assert_eq!(super::printable("plain\nline\tok"), "plain\nline\tok");
        assert_eq!(super::printable("a\u{1b}[31mred\rb\u{7}"), "a\\u{1b}[31mred\\u{d}b\\u{7}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_796_082_301);
        let text = rfc3339(t);
        assert_eq!(text, "2026-11-30T23:45:01Z");
        assert_eq!(parse_rfc3339(&text), Some(t));
        assert_eq!(compact_stamp(t), "20261130-234501");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn ages_and_sizes() {
        assert_eq!(parse_age("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_age("d"), None);
        assert_eq!(parse_age("5y"), None);
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
