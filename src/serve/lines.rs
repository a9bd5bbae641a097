//! Splitting a byte stream into lines of bounded length, for `--lines`.
//!
//! Pure and socket-free: the connection handler feeds whatever each read
//! returned and takes complete lines one at a time, however the peer's
//! writes were cut.

/// A line longer than the limit arrived (the limit excludes the newline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong {
    /// The limit that was exceeded.
    pub max_line: usize,
}

use std::borrow::Cow;

/// Accumulates a partial line between reads. The line limit is given at
/// each call rather than kept: a splitter lives in every `--lines`
/// connection, so it is kept to one empty `Vec`.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// The start of a line whose newline has not arrived yet.
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Takes the next complete line (newline included) from the front of
    /// `data`, advancing it; `None` once `data` is used up, its tail kept
    /// as the start of the next line. A line that arrived whole is borrowed
    /// from `data`. Fails as soon as a line, complete or not, is longer
    /// than `max_line` bytes plus `\n`.
    ///
    /// One line at a time, so the caller can write each answer, and wait
    /// for the peer to take it, before it parses more.
    pub fn next_line<'a>(
        &mut self,
        data: &mut &'a [u8],
        max_line: usize,
    ) -> Result<Option<Cow<'a, [u8]>>, LineTooLong> {
        let too_long = LineTooLong { max_line };
        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
            if self.pending.len() + data.len() > max_line {
                return Err(too_long);
            }
            self.pending.extend_from_slice(data);
            *data = &[];
            return Ok(None);
        };
        if self.pending.len() + nl > max_line {
            return Err(too_long);
        }
        let (head, rest) = data.split_at(nl + 1);
        *data = rest;
        if self.pending.is_empty() {
            return Ok(Some(Cow::Borrowed(head)));
        }
        self.pending.extend_from_slice(head);
        // Taken, not cleared: an idle connection keeps no buffer.
        Ok(Some(Cow::Owned(std::mem::take(&mut self.pending))))
    }

    /// Whether a line has started and not ended yet.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes the unterminated last line at end of stream, if any.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.pending))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &mut LineSplitter, data: &[u8], max: usize) -> Result<Vec<String>, LineTooLong> {
        let mut out = Vec::new();
        let mut data = data;
        while let Some(line) = s.next_line(&mut data, max)? {
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        assert!(data.is_empty());
        Ok(out)
    }

    #[test]
    fn splits_lines_across_reads() {
        let mut s = LineSplitter::default();
        assert_eq!(lines(&mut s, b"a\nb", 100).unwrap(), ["a\n"]);
        assert!(s.has_pending());
        assert_eq!(lines(&mut s, b"c", 100).unwrap(), Vec::<String>::new());
        assert_eq!(
            lines(&mut s, b"d\ne\n\nf", 100).unwrap(),
            ["bcd\n", "e\n", "\n"]
        );
        assert_eq!(s.finish(), Some(b"f".to_vec()));
        assert_eq!(s.finish(), None);
        assert!(!s.has_pending());
    }

    #[test]
    fn rejects_long_lines_complete_or_not() {
        let mut s = LineSplitter::default();
        assert_eq!(lines(&mut s, b"abc\n", 3).unwrap(), ["abc\n"]);
        assert_eq!(
            lines(&mut s, b"abcd\n", 3),
            Err(LineTooLong { max_line: 3 })
        );
        let mut s = LineSplitter::default();
        assert_eq!(lines(&mut s, b"ab", 3).unwrap(), Vec::<String>::new());
        assert!(lines(&mut s, b"cd", 3).is_err());
        let mut s = LineSplitter::default();
        assert!(lines(&mut s, b"ab", 3).is_ok());
        assert!(lines(&mut s, b"cd\n", 3).is_err());
    }
}
