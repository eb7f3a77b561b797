//! Validators and conditional requests (RFC 9110 §8.8 and §13): a strong
//! `ETag` and `Last-Modified` per file, `If-None-Match` and
//! `If-Modified-Since` answered 304, `If-Range` deciding whether a `Range`
//! still applies.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE};

/// The validators of one version of a file.
#[derive(Debug, Clone)]
pub struct Validators {
    /// Strong entity tag, quoted: inode, length and modification time in
    /// nanoseconds, so any change to the file changes it.
    pub etag: String,
    /// Modification time, whole seconds (HTTP dates have no fractions).
    pub modified: SystemTime,
    /// `modified` as an HTTP date.
    pub last_modified: String,
}

impl Validators {
    /// The validators of a file with metadata `meta`.
    pub fn of(meta: &Metadata) -> Validators {
        let mtime_ns = (meta.mtime() as i128) * 1_000_000_000 + meta.mtime_nsec() as i128;
        let etag = format!("\"{:x}-{:x}-{:x}\"", meta.ino(), meta.len(), mtime_ns);
        let secs = meta.mtime().max(0) as u64;
        let modified = UNIX_EPOCH + Duration::from_secs(secs);
        Validators {
            etag,
            last_modified: httpdate::fmt_http_date(modified),
            modified,
        }
    }
}

/// The opaque part of an entity tag (without `W/`), if it is well formed.
fn opaque(tag: &str) -> Option<&str> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    (tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"')).then_some(tag)
}

/// Whether a GET or HEAD may be answered 304 Not Modified.
/// `If-None-Match` wins over `If-Modified-Since` when both are present.
pub fn not_modified(headers: &HeaderMap, v: &Validators) -> bool {
    let inm: Vec<&str> = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .collect();
    if !inm.is_empty() {
        // Weak comparison: W/"x" matches "x".
        return inm
            .iter()
            .flat_map(|h| h.split(','))
            .any(|tag| tag.trim() == "*" || opaque(tag) == Some(&v.etag));
    }
    headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|h| h.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .is_some_and(|since| v.modified <= since)
}

/// Whether a `Range` may be honoured: there is no `If-Range`, or it names
/// this exact version (strong comparison for a tag, exact date otherwise).
pub fn range_applies(headers: &HeaderMap, v: &Validators) -> bool {
    let Some(value) = headers.get(IF_RANGE).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with("W/") {
        return false;
    }
    if value.starts_with('"') {
        return value == v.etag;
    }
    httpdate::parse_http_date(value).is_ok_and(|date| date == v.modified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn v() -> Validators {
        let modified = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Validators {
            etag: "\"1-2-3\"".to_string(),
            last_modified: httpdate::fmt_http_date(modified),
            modified,
        }
    }

    fn headers(pairs: &[(http::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), HeaderValue::from_str(value).expect("value"));
        }
        h
    }

    #[test]
    fn if_none_match_and_if_modified_since() {
        let v = v();
        assert!(not_modified(&headers(&[(IF_NONE_MATCH, "\"1-2-3\"")]), &v));
        assert!(not_modified(
            &headers(&[(IF_NONE_MATCH, "\"x\", W/\"1-2-3\"")]),
            &v
        ));
        assert!(not_modified(&headers(&[(IF_NONE_MATCH, "*")]), &v));
        assert!(!not_modified(&headers(&[(IF_NONE_MATCH, "\"other\"")]), &v));
        let same = v.last_modified.clone();
        assert!(not_modified(&headers(&[(IF_MODIFIED_SINCE, &same)]), &v));
        assert!(!not_modified(
            &headers(&[(IF_MODIFIED_SINCE, "Tue, 14 Nov 2023 22:13:19 GMT")]),
            &v
        ));
        // If-None-Match wins, even when the date would match.
        assert!(!not_modified(
            &headers(&[(IF_NONE_MATCH, "\"other\""), (IF_MODIFIED_SINCE, &same)]),
            &v
        ));
        assert!(!not_modified(
            &headers(&[(IF_MODIFIED_SINCE, "garbage")]),
            &v
        ));
    }

    #[test]
    fn if_range_needs_the_exact_version() {
        let v = v();
        assert!(range_applies(&HeaderMap::new(), &v));
        assert!(range_applies(&headers(&[(IF_RANGE, "\"1-2-3\"")]), &v));
        assert!(!range_applies(&headers(&[(IF_RANGE, "W/\"1-2-3\"")]), &v));
        assert!(!range_applies(&headers(&[(IF_RANGE, "\"old\"")]), &v));
        assert!(range_applies(&headers(&[(IF_RANGE, &v.last_modified)]), &v));
        assert!(!range_applies(
            &headers(&[(IF_RANGE, "Mon, 01 Jan 2001 00:00:00 GMT")]),
            &v
        ));
    }
}
