//! Chunked bodies (RFC 9112 §7.1): sizes, extensions, data and trailers
//! taken off the input as they arrive, so that a chunked upload holds no
//! more than one line of framing beside the body it builds.

use http::HeaderMap;
use wharf_buf::ByteBuf;

use super::error::HttpError;
use super::head::parse_header_block;
use super::limits::HttpLimits;
use super::scan::LineScan;

/// Where the decoder is in a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A chunk-size line, with any extensions.
    Size,
    /// This many more bytes of chunk data.
    Data(usize),
    /// The `\r\n` after a chunk's data.
    DataEnd,
    /// The trailer section after the last chunk, up to its empty line.
    Trailers,
}

/// Reassembles one chunked body.
///
/// * Sizes are parsed by `httparse::parse_chunk_size` (at most 16 hex
///   digits, so no overflow), after checking that the line starts with a
///   hex digit (httparse reads an empty size as 0, which would end the
///   body early: a smuggling vector) and ends with `\r\n`.
/// * Extensions are skipped; the size line with them is bounded by
///   [`HttpLimits::max_header_size`] (400 beyond it).
/// * Chunk data must be followed by exactly `\r\n` (400 otherwise).
/// * The body is bounded by [`HttpLimits::max_body`], checked against
///   each chunk's size before its data arrives (413).
/// * Trailer fields are parsed like header fields and bounded like them
///   (431); they are kept apart from the header fields, never merged.
#[derive(Debug)]
pub(crate) struct ChunkedBody {
    part: Part,
    body: ByteBuf,
    scan: LineScan,
}

impl ChunkedBody {
    pub(crate) fn new() -> ChunkedBody {
        ChunkedBody {
            part: Part::Size,
            body: ByteBuf::new(),
            scan: LineScan::default(),
        }
    }

    /// Consumes what `input` holds of the body; returns the body and its
    /// trailers once the last chunk and the trailer section are in.
    pub(crate) fn read(
        &mut self,
        input: &mut ByteBuf,
        limits: &HttpLimits,
    ) -> Result<Option<(ByteBuf, HeaderMap)>, HttpError> {
        loop {
            match self.part {
                Part::Size => {
                    let Some(size) = self.size_line(input, limits)? else {
                        return Ok(None);
                    };
                    self.part = if size == 0 {
                        Part::Trailers
                    } else {
                        Part::Data(size)
                    };
                }
                Part::Data(remaining) => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = remaining.min(input.len());
                    self.append(input, n, limits)?;
                    self.part = match remaining - n {
                        0 => Part::DataEnd,
                        left => Part::Data(left),
                    };
                }
                Part::DataEnd => match input.get(..2) {
                    Some(b"\r\n") => {
                        input.skip(2);
                        self.part = Part::Size;
                    }
                    Some(_) => return Err(malformed()),
                    None if input.first().is_some_and(|&b| b != b'\r') => {
                        return Err(malformed());
                    }
                    None => return Ok(None),
                },
                Part::Trailers => {
                    let Some(trailers) = self.trailer_section(input, limits)? else {
                        return Ok(None);
                    };
                    let body = std::mem::take(&mut self.body);
                    return Ok(Some((body, trailers)));
                }
            }
        }
    }

    /// The size of the next chunk, once its line is complete (consumed).
    fn size_line(
        &mut self,
        input: &mut ByteBuf,
        limits: &HttpLimits,
    ) -> Result<Option<usize>, HttpError> {
        let Some(line) = self.scan.next_line(input) else {
            if self.scan.pending(input) > limits.max_header_size {
                return Err(HttpError::bad_request("chunk-size line exceeds the limit"));
            }
            return Ok(None);
        };
        if line.len() > limits.max_header_size {
            return Err(HttpError::bad_request("chunk-size line exceeds the limit"));
        }
        let bytes = input.get(..line.next).unwrap_or_default();
        if !bytes.first().is_some_and(u8::is_ascii_hexdigit) {
            return Err(malformed());
        }
        let size = match httparse::parse_chunk_size(bytes) {
            Ok(httparse::Status::Complete((end, size))) if end == line.next => size,
            // Partial: a bare `\n` inside an extension, which httparse
            // would read past.
            _ => return Err(malformed()),
        };
        input.skip(line.next);
        self.scan = LineScan::default();
        // The body so far plus this chunk must fit; checked before any of
        // the chunk's data is buffered.
        let total = u64::try_from(self.body.len())
            .ok()
            .and_then(|len| len.checked_add(size));
        match total {
            Some(total) if total <= limits.max_body as u64 => usize::try_from(size)
                .map(Some)
                .map_err(|_| HttpError::body_too_large()),
            _ => Err(HttpError::body_too_large()),
        }
    }

    /// Moves `n` bytes of chunk data from `input` to the body: without a
    /// copy for a first chunk that arrived whole.
    fn append(
        &mut self,
        input: &mut ByteBuf,
        n: usize,
        limits: &HttpLimits,
    ) -> Result<(), HttpError> {
        if self.body.is_empty() && self.body.capacity() == 0 && self.part == Part::Data(n) {
            self.body = input.split_to(n);
            return Ok(());
        }
        if self.body.capacity() == 0 {
            // Grow from the channel's allocator, not the default one.
            self.body = input
                .allocator()
                .try_buffer(n)
                .map_err(|_| HttpError::body_too_large())?;
        }
        let Some(data) = input.get(..n) else {
            return Err(malformed());
        };
        if self.body.len().saturating_add(n) > limits.max_body {
            return Err(HttpError::body_too_large());
        }
        self.body
            .try_reserve(n)
            .map_err(|_| HttpError::body_too_large())?;
        self.body.extend_from_slice(data);
        input.skip(n);
        Ok(())
    }

    /// The trailer fields, once the section's empty line is in (consumed).
    fn trailer_section(
        &mut self,
        input: &mut ByteBuf,
        limits: &HttpLimits,
    ) -> Result<Option<HeaderMap>, HttpError> {
        let too_large = || HttpError::headers_too_large("trailer section exceeds the limit");
        loop {
            let Some(line) = self.scan.next_line(input) else {
                if input.len() > limits.max_header_size {
                    return Err(too_large());
                }
                return Ok(None);
            };
            if line.is_empty() {
                if line.next > limits.max_header_size {
                    return Err(too_large());
                }
                let block = input.get(..line.next).unwrap_or_default();
                let trailers = parse_header_block(block, limits.max_headers)?;
                input.skip(line.next);
                self.scan = LineScan::default();
                return Ok(Some(trailers));
            }
        }
    }
}

fn malformed() -> HttpError {
    HttpError::bad_request("malformed chunked encoding")
}
