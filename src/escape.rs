//! Escaping peer data for logs, so binary input cannot corrupt a terminal.

use std::fmt::Write;

/// How many bytes of a payload a log line shows before eliding the rest.
pub const LOG_PREVIEW: usize = 256;

/// Renders `data` for a log line: printable ASCII as is, `\n`, `\r`, `\t`,
/// `\\` and other bytes as `\xNN`; past `limit` bytes, a count of the rest.
pub fn escape_bytes(data: &[u8], limit: usize) -> String {
    let shown = &data[..data.len().min(limit)];
    let mut out = String::with_capacity(shown.len() + 16);
    for &b in shown {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    if data.len() > shown.len() {
        let _ = write!(out, "... ({} more bytes)", data.len() - shown.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_unchanged() {
        assert_eq!(escape_bytes(b"hello, world", 256), "hello, world");
    }

    #[test]
    fn control_and_binary_bytes_are_escaped() {
        assert_eq!(
            escape_bytes(b"a\nb\r\t\x1b[31m\x00\xff\\", 256),
            "a\\nb\\r\\t\\x1b[31m\\x00\\xff\\\\"
        );
    }

    #[test]
    fn long_payloads_are_elided() {
        assert_eq!(escape_bytes(b"abcdef", 3), "abc... (3 more bytes)");
    }
}
