//! Writing responses: the status line and header fields into one pooled
//! buffer, then the body beside it, in memory or as a file region.
//!
//! It writes to `Encoded` itself rather than through the crate's `Sink`:
//! a body may be shared bytes or a file region, which only `Encoded`'s
//! `push_frozen` and `push_message` queue, and `Encoded::new` lets the
//! tests run against the real thing.

use http::header::{CONTENT_LENGTH, DATE, SERVER, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, StatusCode, Version};
use wharf_buf::ByteBuf;
use wharf_transport::{CodecError, Encoded, OutboundMessage};

use super::date::{self, DATE_LEN};
use super::framing::parse_decimal;
use super::response::{Body, HttpResponse};
use crate::sink::COPY_LIMIT;

/// `": "` and `"\r\n"` around each field's value.
const FIELD_OVERHEAD: usize = 4;
/// The longest decimal `u64`.
const MAX_DIGITS: usize = 20;

/// Writes responses (see [`HttpResponse`] for the rules it enforces).
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    /// Add `Date` when the handler did not.
    pub(crate) date: bool,
    /// Add `Server` with this value when the handler did not.
    pub(crate) server: Option<HeaderValue>,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder {
            date: true,
            server: Some(HeaderValue::from_static("wharf")),
        }
    }
}

impl Encoder {
    pub(crate) fn encode(
        &self,
        response: HttpResponse,
        out: &mut Encoded,
    ) -> Result<(), CodecError> {
        let sends_body = response.sends_body();
        let allows_body = response.status_allows_body();
        let HttpResponse {
            status,
            version,
            mut headers,
            fields,
            body,
            head_only,
        } = response;
        let version: &[u8] = match version {
            Version::HTTP_11 => b"HTTP/1.1 ",
            Version::HTTP_10 => b"HTTP/1.0 ",
            other => {
                return Err(CodecError::Unencodable(format!(
                    "an HTTP/1 connection cannot carry a {other:?} response"
                )));
            }
        };
        if headers.contains_key(TRANSFER_ENCODING) {
            return Err(CodecError::Unencodable(
                "Transfer-Encoding is not supported: bodies are framed with Content-Length"
                    .to_owned(),
            ));
        }
        let interim_or_empty = status.is_informational() || status == StatusCode::NO_CONTENT;
        if interim_or_empty {
            // RFC 9110 §8.6: never a Content-Length on 1xx or 204.
            headers.remove(CONTENT_LENGTH);
        }
        let body_len = body.len();
        let in_map = declared_length(&headers)?;
        let preset = fields.as_ref().and_then(|f| f.content_length());
        if let (Some(a), Some(b)) = (in_map, preset)
            && a != b
        {
            return Err(CodecError::Unencodable(
                "conflicting Content-Length values".to_owned(),
            ));
        }
        // The encoded fields' Content-Length goes out unless the map has
        // one too, or no Content-Length may.
        let preset_length = fields
            .as_ref()
            .map(|f| f.length_field())
            .filter(|_| !interim_or_empty && in_map.is_none())
            .unwrap_or_default();
        let (fields_bytes, declared) = match &fields {
            Some(f) if !interim_or_empty => (f.fields(), in_map.or(preset)),
            Some(f) => (f.fields(), in_map),
            None => (&[][..], in_map),
        };
        let content_length = match declared {
            Some(declared) if sends_body && declared != body_len => {
                return Err(CodecError::Unencodable(format!(
                    "Content-Length is {declared} but the body has {body_len} bytes"
                )));
            }
            Some(_) => None,
            // 304 describes a representation it does not send; HEAD
            // without a length set says nothing rather than something false.
            None if !allows_body || (head_only && body_len == 0) => None,
            None => Some(body_len),
        };
        let date = (self.date && !status.is_informational() && !headers.contains_key(DATE))
            .then(date::now);
        let server = self
            .server
            .as_ref()
            .filter(|_| !status.is_informational() && !headers.contains_key(SERVER));

        let reason = status.canonical_reason().unwrap_or("");
        let mut head_len = version.len() + 3 + 1 + reason.len() + 2;
        for (name, value) in &headers {
            head_len = head_len
                .saturating_add(name.as_str().len() + FIELD_OVERHEAD)
                .saturating_add(value.len());
        }
        head_len = head_len
            .saturating_add(fields_bytes.len())
            .saturating_add(preset_length.len());
        if content_length.is_some() {
            head_len += CONTENT_LENGTH.as_str().len() + FIELD_OVERHEAD + MAX_DIGITS;
        }
        if date.is_some() {
            head_len += DATE.as_str().len() + FIELD_OVERHEAD + DATE_LEN;
        }
        if let Some(server) = server {
            head_len =
                head_len.saturating_add(SERVER.as_str().len() + FIELD_OVERHEAD + server.len());
        }
        head_len += 2;
        // A small body in memory goes out in the head's buffer: one entry,
        // one iovec.
        let inline = match &body {
            Body::Bytes(buf) if sends_body && buf.len() <= COPY_LIMIT => Some(&buf[..]),
            Body::Frozen(buf) if sends_body && buf.len() <= COPY_LIMIT => Some(&buf[..]),
            _ => None,
        };

        let mut head = out.buffer(head_len + inline.map_or(0, <[u8]>::len));
        head.extend_from_slice(version);
        head.extend_from_slice(status.as_str().as_bytes());
        head.extend_from_slice(b" ");
        head.extend_from_slice(reason.as_bytes());
        head.extend_from_slice(b"\r\n");
        for (name, value) in &headers {
            field(&mut head, name.as_str().as_bytes(), value.as_bytes());
        }
        head.extend_from_slice(fields_bytes);
        head.extend_from_slice(preset_length);
        if let Some(length) = content_length {
            let mut digits = [0; MAX_DIGITS];
            field(
                &mut head,
                CONTENT_LENGTH.as_str().as_bytes(),
                decimal(length, &mut digits),
            );
        }
        if let Some(date) = &date {
            field(&mut head, DATE.as_str().as_bytes(), date);
        }
        if let Some(server) = server {
            field(&mut head, SERVER.as_str().as_bytes(), server.as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        if let Some(bytes) = inline {
            head.extend_from_slice(bytes);
            out.push(head);
            return Ok(());
        }
        out.push(head);
        if !sends_body {
            return Ok(());
        }
        match body {
            Body::Empty => {}
            Body::Bytes(buf) => out.push(buf),
            Body::Frozen(buf) => out.push_frozen(buf),
            Body::File(region) => {
                if region.remaining() > 0 {
                    out.push_message(OutboundMessage::File(region));
                }
            }
        }
        Ok(())
    }
}

/// The `Content-Length` the handler set, if any.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, CodecError> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let n = parse_decimal(value.as_bytes())
            .ok_or_else(|| CodecError::Unencodable(format!("invalid Content-Length {value:?}")))?;
        if length.is_some_and(|seen| seen != n) {
            return Err(CodecError::Unencodable(
                "conflicting Content-Length values".to_owned(),
            ));
        }
        length = Some(n);
    }
    Ok(length)
}

/// Writes `name: value\r\n`.
fn field(head: &mut ByteBuf, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// `n` in decimal, in the tail of `digits`.
fn decimal(mut n: u64, digits: &mut [u8; MAX_DIGITS]) -> &[u8] {
    let mut start = MAX_DIGITS;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[start..];
        }
    }
}
