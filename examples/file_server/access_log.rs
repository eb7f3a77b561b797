//! One line per response on stdout with `--log`: peer, request line,
//! status and body length, in the spirit of the common log format.

use std::io::Write;
use std::net::SocketAddr;

use wharf::codec::{HttpRequest, HttpResponse};

/// Prints the access-log line for `response` (to `request`, if it parsed).
pub fn line(peer: Option<SocketAddr>, request: Option<&HttpRequest>, response: &HttpResponse) {
    let peer = peer.map_or_else(|| "-".to_string(), |p| p.ip().to_string());
    let when = httpdate::fmt_http_date(std::time::SystemTime::now());
    let request = request.map_or_else(
        || "-".to_string(),
        |r| format!("{} {} {:?}", r.method, r.uri, r.version),
    );
    let bytes = if response.sends_body() {
        response.body.len()
    } else {
        0
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{peer} [{when}] \"{request}\" {} {bytes}",
        response.status.as_u16()
    );
}
