//! Finding lines in a head that arrives in pieces, without looking at any
//! byte twice: the request line, header and trailer blocks and chunk-size
//! lines are all found this way before a parser sees them.

/// A complete line found by [`LineScan`], as offsets into the scanned
/// buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    /// First byte of the line.
    pub(crate) start: usize,
    /// End of its content: before the `\r\n`, or before a bare `\n`.
    pub(crate) end: usize,
    /// First byte after its `\n`.
    pub(crate) next: usize,
}

impl Line {
    /// Bytes of content, without the line ending.
    pub(crate) fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the line is empty: the end of a header block.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Walks a buffer that only grows at the back, one line at a time, and
/// resumes where it stopped when more bytes arrive.
///
/// A line ends at `\n`; a `\r` just before it is part of the ending, so
/// `\r\n` and a bare `\n` both end lines here, as httparse reads heads.
/// Which endings are *valid* is the parser's business.
#[derive(Debug, Default, Clone)]
pub(crate) struct LineScan {
    /// Start of the line being scanned.
    line_start: usize,
    /// Bytes already searched for `\n`.
    scanned: usize,
}

impl LineScan {
    /// Whether nothing has been scanned yet.
    pub(crate) fn is_fresh(&self) -> bool {
        self.scanned == 0
    }

    /// The next complete line of `buf` after those already returned.
    pub(crate) fn next_line(&mut self, buf: &[u8]) -> Option<Line> {
        let from = self.scanned.min(buf.len());
        let found = buf
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'));
        let Some(pos) = found else {
            self.scanned = buf.len();
            return None;
        };
        // `from + pos < buf.len()`: no overflow.
        let newline = from + pos;
        let start = self.line_start;
        let end = match newline.checked_sub(1) {
            Some(before) if before >= start && buf.get(before) == Some(&b'\r') => before,
            _ => newline,
        };
        self.line_start = newline + 1;
        self.scanned = newline + 1;
        Some(Line {
            start,
            end,
            next: newline + 1,
        })
    }

    /// Bytes of the unfinished line so far, not counting a final `\r`
    /// (which may yet turn out to start the line ending): the same length
    /// the line will have if it ends with the next byte, so that a limit
    /// fails the same way however the bytes were cut into reads.
    pub(crate) fn pending(&self, buf: &[u8]) -> usize {
        let rest = buf.get(self.line_start..).unwrap_or_default();
        rest.strip_suffix(b"\r").map_or(rest.len(), <[u8]>::len)
    }
}
