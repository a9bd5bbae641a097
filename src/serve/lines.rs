//! Splitting a byte stream into lines of bounded length, for `--lines`.
//!
//! Pure and socket-free: the connection handler pushes whatever each read
//! returned and gets back complete lines, however the peer's writes were cut.

/// A line longer than the limit arrived (the limit excludes the newline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong {
    /// The limit that was exceeded.
    pub max_line: usize,
}

/// Accumulates a partial line between reads.
#[derive(Debug)]
pub struct LineSplitter {
    /// The start of a line whose newline has not arrived yet.
    pending: Vec<u8>,
    /// The longest line accepted, newline excluded.
    max_line: usize,
}

impl LineSplitter {
    /// A splitter accepting lines of at most `max_line` bytes plus `\n`.
    pub fn new(max_line: usize) -> LineSplitter {
        LineSplitter {
            pending: Vec::new(),
            max_line,
        }
    }

    /// Feeds `data`, calling `on_line` with each complete line (newline
    /// included). Fails as soon as a line, complete or not, is too long.
    pub fn push(
        &mut self,
        mut data: &[u8],
        mut on_line: impl FnMut(&[u8]),
    ) -> Result<(), LineTooLong> {
        let too_long = LineTooLong {
            max_line: self.max_line,
        };
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let (head, rest) = data.split_at(nl + 1);
            if self.pending.len() + nl > self.max_line {
                return Err(too_long);
            }
            if self.pending.is_empty() {
                on_line(head);
            } else {
                self.pending.extend_from_slice(head);
                // Taken, not cleared: an idle connection keeps no buffer.
                on_line(&std::mem::take(&mut self.pending));
            }
            data = rest;
        }
        if self.pending.len() + data.len() > self.max_line {
            return Err(too_long);
        }
        self.pending.extend_from_slice(data);
        Ok(())
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

    fn lines(s: &mut LineSplitter, data: &[u8]) -> Result<Vec<String>, LineTooLong> {
        let mut out = Vec::new();
        s.push(data, |l| out.push(String::from_utf8_lossy(l).into_owned()))?;
        Ok(out)
    }

    #[test]
    fn splits_lines_across_reads() {
        let mut s = LineSplitter::new(100);
        assert_eq!(lines(&mut s, b"a\nb").unwrap(), ["a\n"]);
        assert_eq!(lines(&mut s, b"c").unwrap(), Vec::<String>::new());
        assert_eq!(lines(&mut s, b"d\ne\n\nf").unwrap(), ["bcd\n", "e\n", "\n"]);
        assert_eq!(s.finish(), Some(b"f".to_vec()));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn rejects_long_lines_complete_or_not() {
        let mut s = LineSplitter::new(3);
        assert_eq!(lines(&mut s, b"abc\n").unwrap(), ["abc\n"]);
        assert_eq!(lines(&mut s, b"abcd\n"), Err(LineTooLong { max_line: 3 }));
        let mut s = LineSplitter::new(3);
        assert_eq!(lines(&mut s, b"ab").unwrap(), Vec::<String>::new());
        assert!(lines(&mut s, b"cd").is_err());
        let mut s = LineSplitter::new(3);
        assert!(lines(&mut s, b"ab").is_ok());
        assert!(lines(&mut s, b"cd\n").is_err());
    }
}
