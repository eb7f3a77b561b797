//! `Range: bytes=…` (RFC 9110 §14): one range is answered 206 with
//! `Content-Range`; a range that starts past the end is 416; several
//! ranges, another unit, or a header we cannot parse are answered with the
//! whole file (a server may ignore `Range`).

/// What to send for a `Range` header on a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// The whole file, 200.
    Full,
    /// Bytes `first..=last`, 206.
    Part {
        /// First byte.
        first: u64,
        /// Last byte (inclusive).
        last: u64,
    },
    /// 416, with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Interprets a `Range` header value.
pub fn parse(header: &str, len: u64) -> Ranged {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ranged::Full;
    };
    if spec.contains(',') {
        // Several ranges: answered with the whole file.
        return Ranged::Full;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ranged::Full;
    };
    let (start, end) = (start.trim(), end.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (start.is_empty(), end.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(end) {
            Some(0) => Ranged::Unsatisfiable,
            Some(n) if len > 0 => Ranged::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
            Some(_) => Ranged::Unsatisfiable,
            None => Ranged::Full,
        },
        // bytes=a-
        (false, true) => match number(start) {
            Some(first) if first < len => Ranged::Part {
                first,
                last: len - 1,
            },
            Some(_) => Ranged::Unsatisfiable,
            None => Ranged::Full,
        },
        // bytes=a-b
        (false, false) => match (number(start), number(end)) {
            (Some(first), Some(last)) if first <= last => {
                if first < len {
                    Ranged::Part {
                        first,
                        last: last.min(len - 1),
                    }
                } else {
                    Ranged::Unsatisfiable
                }
            }
            _ => Ranged::Full,
        },
        (true, true) => Ranged::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_and_edge() {
        let part = |first, last| Ranged::Part { first, last };
        assert_eq!(parse("bytes=0-0", 10), part(0, 0));
        assert_eq!(parse("bytes=2-5", 10), part(2, 5));
        assert_eq!(parse("bytes=2-500", 10), part(2, 9));
        assert_eq!(parse("bytes=9-", 10), part(9, 9));
        assert_eq!(parse("bytes=-3", 10), part(7, 9));
        assert_eq!(parse("bytes=-30", 10), part(0, 9));
        assert_eq!(parse("bytes=10-", 10), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=10-20", 10), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 10), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=-5", 0), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=5-2", 10), Ranged::Full);
        assert_eq!(parse("bytes=0-1,4-5", 10), Ranged::Full);
        assert_eq!(parse("items=0-1", 10), Ranged::Full);
        assert_eq!(parse("bytes=a-b", 10), Ranged::Full);
        assert_eq!(parse("bytes=+1-2", 10), Ranged::Full);
        assert_eq!(parse("bytes=99999999999999999999-", 10), Ranged::Full);
        assert_eq!(parse("bytes=-", 10), Ranged::Full);
    }
}
