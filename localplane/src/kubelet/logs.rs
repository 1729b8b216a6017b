//! Pod logs and termination messages.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most a termination message may hold, as on a real kubelet.
pub const MAX_MESSAGE_BYTES: u64 = 4096;
/// FallbackToLogsOnError takes at most this many lines and bytes of the log.
pub const FALLBACK_LINES: usize = 80;
pub const FALLBACK_BYTES: u64 = 2048;

/// The last `max` bytes of a file (empty if it cannot be read), as lossy UTF-8.
pub fn tail_bytes(path: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = file.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last `lines` lines of `text`.
pub fn last_lines(text: &str, lines: usize) -> String {
    let trimmed = text.strip_suffix('\n').unwrap_or(text);
    let mut start = trimmed.len();
    let mut seen = 0;
    while seen < lines {
        match trimmed[..start].rfind('\n') {
            Some(i) => {
                start = i;
                seen += 1;
            }
            None => return text.to_string(),
        }
    }
    text[start + 1..].to_string()
}

/// What a log request asks for of `text`: its last `tail_lines` lines, then at most
/// `limit_bytes` bytes (cut on a character boundary).
pub fn select(text: &str, tail_lines: Option<usize>, limit_bytes: Option<usize>) -> String {
    let mut text = match tail_lines {
        Some(lines) => last_lines(text, lines),
        None => text.to_string(),
    };
    if let Some(limit) = limit_bytes
        && text.len() > limit
    {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The message of a terminated container: its termination-message file, or, with
/// `FallbackToLogsOnError`, the tail of the log when the file is empty and the container failed.
pub fn termination_message(message_file: &Path, log_file: &Path, fallback_to_logs: bool, exit_code: i32) -> String {
    let message = tail_bytes(message_file, MAX_MESSAGE_BYTES);
    if message.is_empty() && fallback_to_logs && exit_code != 0 {
        return last_lines(&tail_bytes(log_file, FALLBACK_BYTES), FALLBACK_LINES);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_takes_the_last_lines_then_the_first_bytes() {
        assert_eq!(select("a\nb\nc\n", Some(2), None), "b\nc\n");
        assert_eq!(select("a\nb\nc\n", Some(2), Some(3)), "b\nc");
        assert_eq!(select("é", None, Some(1)), "");
        assert_eq!(select("a\n", Some(5), None), "a\n");
    }

    #[test]
    fn tails_and_fallbacks() {
        let dir = std::env::temp_dir().join(format!("lp-logs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let msg = dir.join("msg");
        let log = dir.join("log");
        std::fs::write(&msg, "x".repeat(5000) + "END").unwrap();
        let lines: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, &lines).unwrap();

        let m = termination_message(&msg, &log, true, 1);
        assert_eq!(m.len(), 4096);
        assert!(m.ends_with("END"));

        std::fs::write(&msg, "").unwrap();
        assert_eq!(termination_message(&msg, &log, false, 1), "");
        assert_eq!(termination_message(&msg, &log, true, 0), "");
        let fb = termination_message(&msg, &log, true, 2);
        assert!(fb.starts_with("line 20\n") && fb.ends_with("line 99\n"), "{fb}");
        assert_eq!(fb.lines().count(), 80);

        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a\n", 5), "a\n");
        assert_eq!(tail_bytes(&dir.join("absent"), 10), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
