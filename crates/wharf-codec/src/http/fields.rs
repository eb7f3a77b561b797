//! Header fields encoded once and written as they are, for a response a
//! server sends many times: a file server's `Content-Type`, `ETag`,
//! `Last-Modified` and `Content-Length` for one version of a file. The
//! encoder copies the bytes into the head (no formatting, no header map),
//! and a clone shares them (an atomic increment, no allocation).

use std::fmt;
use std::sync::Arc;

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, SERVER, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue};
use wharf_transport::CodecError;

/// Header fields encoded once (`name: value\r\n` each), with an optional
/// `Content-Length` last, which the encoder leaves out where no response
/// may carry one (1xx, 204) or where the handler set one in the header
/// map.
///
/// ```
/// use http::header::{CONTENT_TYPE, ETAG};
/// use http::HeaderValue;
/// use wharf_codec::EncodedFields;
///
/// let fields = EncodedFields::new(
///     [
///         (CONTENT_TYPE, HeaderValue::from_static("text/plain")),
///         (ETAG, HeaderValue::from_static("\"1\"")),
///     ],
///     Some(5),
/// )
/// .expect("fields the encoder may write as they are");
/// assert_eq!(fields.content_length(), Some(5));
/// ```
///
/// Threading: `Send + Sync`; clones share one buffer.
#[derive(Clone)]
pub struct EncodedFields {
    /// The fields, then the `Content-Length` field (from `split` on).
    bytes: Arc<[u8]>,
    /// Where the `Content-Length` field starts (`bytes.len()` if none).
    split: usize,
    content_length: Option<u64>,
}

impl EncodedFields {
    /// Encodes `fields`, in order, and `content_length` after them.
    ///
    /// Refused (`CodecError::Unencodable`): `Content-Length` among
    /// `fields` (pass it as `content_length`), and the fields the encoder
    /// itself decides on: `Transfer-Encoding`, `Connection`, `Date` and
    /// `Server`. `HeaderValue` cannot hold CR or LF, so no field can split
    /// the response.
    pub fn new(
        fields: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
        content_length: Option<u64>,
    ) -> Result<EncodedFields, CodecError> {
        let mut bytes = Vec::with_capacity(256);
        for (name, value) in fields {
            if [CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION, DATE, SERVER].contains(&name) {
                return Err(CodecError::Unencodable(format!(
                    "{name} cannot be an encoded field"
                )));
            }
            push_field(&mut bytes, name.as_str().as_bytes(), value.as_bytes());
        }
        let split = bytes.len();
        if let Some(length) = content_length {
            let digits = length.to_string();
            push_field(
                &mut bytes,
                CONTENT_LENGTH.as_str().as_bytes(),
                digits.as_bytes(),
            );
        }
        Ok(EncodedFields {
            bytes: bytes.into(),
            split,
            content_length,
        })
    }

    /// The first `n` fields only, without `Content-Length`: the same
    /// bytes, shared (a 304 or a 206 of the file whose 200 these fields
    /// describe).
    pub fn first(&self, n: usize) -> EncodedFields {
        let mut split = 0;
        for _ in 0..n {
            match self.bytes[split..self.split]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                Some(at) => split += at + 2,
                None => break,
            }
        }
        EncodedFields {
            bytes: Arc::clone(&self.bytes),
            split,
            content_length: None,
        }
    }

    /// The `Content-Length` these fields declare, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The fields without `Content-Length`, encoded.
    pub(crate) fn fields(&self) -> &[u8] {
        &self.bytes[..self.split]
    }

    /// The `Content-Length` field, encoded (empty if none).
    pub(crate) fn length_field(&self) -> &[u8] {
        if self.content_length.is_some() {
            &self.bytes[self.split..]
        } else {
            &[]
        }
    }
}

impl fmt::Debug for EncodedFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedFields")
            .field("bytes", &String::from_utf8_lossy(&self.bytes))
            .finish()
    }
}

/// Appends `name: value\r\n`.
fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use http::header::{CONTENT_TYPE, ETAG};

    use super::*;

    #[test]
    fn fields_are_encoded_in_order_with_the_length_last() {
        let fields = EncodedFields::new(
            [
                (ETAG, HeaderValue::from_static("\"a\"")),
                (CONTENT_TYPE, HeaderValue::from_static("text/html")),
            ],
            Some(1024),
        )
        .expect("fields");
        assert_eq!(
            fields.fields(),
            b"etag: \"a\"\r\ncontent-type: text/html\r\n"
        );
        assert_eq!(fields.length_field(), b"content-length: 1024\r\n");
        assert_eq!(fields.content_length(), Some(1024));
        let first = fields.first(1);
        assert_eq!(first.fields(), b"etag: \"a\"\r\n");
        assert!(first.length_field().is_empty() && first.content_length().is_none());
        assert_eq!(fields.first(2).fields(), fields.fields());
        assert_eq!(fields.first(9).fields(), fields.fields());
        let none = EncodedFields::new([], None).expect("no fields");
        assert!(none.fields().is_empty() && none.length_field().is_empty());
    }

    #[test]
    fn fields_the_encoder_decides_on_are_refused() {
        for name in [CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION, DATE, SERVER] {
            let refused = EncodedFields::new([(name.clone(), HeaderValue::from_static("1"))], None);
            assert!(refused.is_err(), "{name}");
        }
    }
}
