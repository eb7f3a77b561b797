//! Property tests: streams of valid requests decode to what was sent
//! however they are cut into reads; any bytes at all, with any limits,
//! never panic and decode the same however they are cut.

use proptest::prelude::*;

use super::decode_three_ways;
use crate::HttpLimits;

/// One request to send, and what it should decode to.
#[derive(Debug, Clone)]
struct Spec {
    method: &'static str,
    path: String,
    http_10: bool,
    connection: Option<&'static str>,
    body: Vec<u8>,
    /// Chunk sizes to cut the body into (chunked framing), or `None` for
    /// `Content-Length` (or no framing field when the body is empty and
    /// `bare` is set).
    chunks: Option<Vec<usize>>,
    bare: bool,
    extension: bool,
    trailer: bool,
}

impl Spec {
    fn encode(&self, out: &mut Vec<u8>) {
        let version = if self.http_10 { "1.0" } else { "1.1" };
        out.extend_from_slice(
            format!("{} {} HTTP/{version}\r\n", self.method, self.path).as_bytes(),
        );
        out.extend_from_slice(b"Host: example.com\r\n");
        if let Some(connection) = self.connection {
            out.extend_from_slice(format!("Connection: {connection}\r\n").as_bytes());
        }
        match &self.chunks {
            None if self.bare && self.body.is_empty() => out.extend_from_slice(b"\r\n"),
            None => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
                out.extend_from_slice(&self.body);
            }
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &self.body[..];
                for &size in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
                    rest = tail;
                    let ext = if self.extension { ";x=\"y\"" } else { "" };
                    out.extend_from_slice(format!("{:X}{ext}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                if self.trailer {
                    out.extend_from_slice(b"X-Trailer: t\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn keep_alive(&self) -> bool {
        let close = self.connection == Some("close");
        let keep = self.connection == Some("keep-alive");
        if self.http_10 {
            keep && self.chunks.is_none()
        } else {
            !close
        }
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
        "(/[a-z0-9.%-]{0,6}){1,3}(\\?[a-z=&]{0,8})?",
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["close", "keep-alive", "upgrade"])),
        prop::collection::vec(any::<u8>(), 0..80),
        prop::option::of(prop::collection::vec(1usize..30, 1..4)),
        (any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(method, path, http_10, connection, body, chunks, (bare, extension, trailer))| Spec {
                method,
                path,
                http_10,
                connection,
                body,
                chunks,
                bare,
                extension,
                trailer,
            },
        )
}

/// Bytes shaped enough like HTTP to reach every state: request lines,
/// header lines with framing fields, blank lines, chunk-size lines and
/// data, with random bytes anywhere between.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        (0u32..40).prop_map(|n| n.to_string()),
        Just("chunked".to_owned()),
        Just("gzip, chunked".to_owned()),
        Just("close".to_owned()),
        Just("keep-alive".to_owned()),
        Just("a".to_owned()),
        "[ -~]{0,6}",
    ];
    let name = prop_oneof![
        8 => prop::sample::select(vec!["Content-Length", "Transfer-Encoding", "Connection", "X"]),
        1 => prop::sample::select(vec!["Host", " X", "X "]),
    ];
    let line = prop::sample::select(vec![
        "GET / HTTP/1.1\r\n",
        "POST /x?y HTTP/1.1\r\n",
        "HEAD * HTTP/1.0\r\n",
        "OPTIONS * HTTP/1.1\r\n",
        "PUT http://h/p HTTP/1.1\r\n",
        "CONNECT h:1 HTTP/1.1\r\n",
        "GET / HTTP/2.0\r\n",
        "BREW / HTTP/1.1\r\n",
    ])
    .prop_map(|line| line.as_bytes().to_vec());
    let segment = prop_oneof![
        1 => line.clone(),
        8 => (name, value).prop_map(|(name, value)| format!("{name}: {value}\r\n").into_bytes()),
        3 => Just(b"\r\n".to_vec()),
        2 => (0u32..40, any::<bool>()).prop_map(|(n, ext)| {
            format!("{n:x}{}\r\n", if ext { ";e=1" } else { "" }).into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 1..8),
        2 => "[a-z]{1,12}".prop_map(String::into_bytes),
        1 => prop::sample::select(vec!["\n", "\r", " ", ":", ";", "0\r\n\r\n"])
            .prop_map(|s| s.as_bytes().to_vec()),
    ];
    // Each "request" opens with a request line (or, sometimes, anything),
    // usually followed by a Host.
    let request = (
        prop_oneof![6 => line, 1 => prop::collection::vec(any::<u8>(), 0..4)],
        prop::sample::select(vec!["Host: a\r\n", "Host: a\r\n", "Host: a\r\n", ""]),
        prop::collection::vec(segment, 0..10),
    )
        .prop_map(|(line, host, segments)| {
            [line, host.as_bytes().to_vec(), segments.concat()].concat()
        });
    prop::collection::vec(request, 1..4).prop_map(|requests| requests.concat())
}

/// A chunked body that is mostly right: chunks whose data is sometimes a
/// byte short or long, or ends wrongly, extensions, a last chunk with
/// trailer lines (some malformed), then anything.
fn chunk_noise() -> impl Strategy<Value = Vec<u8>> {
    let ending =
        || prop_oneof![40 => Just("\r\n"), 1 => Just("\n"), 1 => Just(""), 1 => Just("\rx")];
    let chunk = (
        1usize..24,
        prop_oneof![40 => prop::sample::select(vec!["", ";e", ";e=\"v;\"", " ;e"]), 1 => Just("\n")],
        prop_oneof![40 => Just(0isize), 1 => Just(-1isize), 1 => Just(1isize)],
        ending(),
    )
        .prop_map(|(n, ext, delta, end)| {
            let data = "d".repeat(n.saturating_add_signed(delta));
            format!("{n:x}{ext}\r\n{data}{end}").into_bytes()
        });
    let trailer = prop_oneof![
        10 => Just("T: v\r\n"),
        1 => prop::sample::select(vec!["No colon\r\n", " folded\r\n"]),
    ];
    (
        prop::collection::vec(chunk, 0..8),
        prop::sample::select(vec!["0\r\n", "0\r\n", "0;e\r\n", "00\r\n", "\r\n", ""]),
        prop::collection::vec(trailer, 0..3),
        ending(),
        prop::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|(chunks, last, trailers, end, tail)| {
            let mut body = chunks.concat();
            body.extend_from_slice(last.as_bytes());
            body.extend_from_slice(trailers.concat().as_bytes());
            body.extend_from_slice(end.as_bytes());
            body.extend_from_slice(&tail);
            body
        })
}

fn limits() -> impl Strategy<Value = HttpLimits> {
    prop_oneof![
        3 => Just(HttpLimits::default()),
        1 => (1usize..40, 0usize..60, 0usize..4, 0usize..40).prop_map(|(line, header, count, body)| {
            HttpLimits {
                max_request_line: line,
                max_header_size: header,
                max_headers: count,
                max_body: body,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(crate::tests::config())]

    #[test]
    fn valid_requests_decode_to_what_was_sent(
        specs in prop::collection::vec(spec(), 1..5),
        sizes in crate::tests::read_sizes(),
    ) {
        let mut data = Vec::new();
        for spec in &specs {
            spec.encode(&mut data);
        }
        let out = decode_three_ways(HttpLimits::default(), &data, &sizes);
        prop_assert_eq!(out.len(), specs.len());
        for (decoded, spec) in out.iter().zip(&specs) {
            let request = decoded.as_ref().map_err(|e| TestCaseError::fail(format!("{e}: {spec:?}")))?;
            prop_assert_eq!(request.method.as_str(), spec.method);
            prop_assert_eq!(request.uri.to_string(), spec.path.clone());
            prop_assert_eq!(&request.body[..], &spec.body[..]);
            prop_assert_eq!(request.keep_alive, spec.keep_alive());
            prop_assert_eq!(request.trailers.contains_key("x-trailer"), spec.trailer && spec.chunks.is_some());
        }
    }

    #[test]
    fn any_bytes_with_any_limits_decode_the_same_however_cut(
        data in noise(),
        sizes in crate::tests::read_sizes(),
        limits in limits(),
    ) {
        let out = decode_three_ways(limits, &data, &sizes);
        // At most one error, and it is the last message.
        let errors = out.iter().filter(|r| r.is_err()).count();
        prop_assert!(errors <= 1);
        if errors == 1 {
            prop_assert!(out.last().is_some_and(Result::is_err));
        }
    }

    #[test]
    fn chunked_bodies_of_noise_decode_the_same_however_cut(
        body in chunk_noise(),
        sizes in crate::tests::read_sizes(),
        limits in limits(),
    ) {
        let mut data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        data.extend_from_slice(&body);
        let limits = HttpLimits { max_request_line: 64, max_header_size: limits.max_header_size.max(64), ..limits };
        decode_three_ways(limits, &data, &sizes);
    }

    #[test]
    fn valid_requests_followed_by_noise(
        spec in spec(),
        data in noise(),
        sizes in crate::tests::read_sizes(),
    ) {
        let mut stream = Vec::new();
        spec.encode(&mut stream);
        stream.extend_from_slice(&data);
        let out = decode_three_ways(HttpLimits::default(), &stream, &sizes);
        let first = out.first().and_then(|r| r.as_ref().ok());
        prop_assert!(first.is_some_and(|r| r.body[..] == spec.body[..]), "{:?}", out);
    }
}
