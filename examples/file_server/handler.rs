//! The per-connection handler: answers GET and HEAD with files, ranges,
//! 304s and directory listings, and keeps slow or idle clients from holding
//! the server.
//!
//! Timeouts: while a request head is on its way (from the first byte, or
//! from the start of the connection) the header timeout runs, so a client
//! that trickles a header one byte a second (slowloris) is answered 408 and
//! closed; between requests on a kept-alive connection the idle timeout
//! runs and the connection is closed quietly (not while a response is still
//! being sent: a long download is not idle).
//!
//! Backpressure: while the connection's output is above its high water
//! mark (a client pipelining requests without reading the answers), the
//! handler stops reading, so such a client holds one connection's worth of
//! memory and descriptors, not more.

use std::fs::{File, Metadata};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::header::{
    ACCEPT_RANGES, ALLOW, CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION, RANGE,
    RETRY_AFTER,
};
use http::{HeaderValue, Method, StatusCode};
use wharf::codec::{HttpError, HttpRequest, HttpResponse};
use wharf::{ChannelError, Context, FileRegion, Handler, TimerId, TransferStrategy, UserEvent};

use crate::conditional::{Validators, not_modified, range_applies};
use crate::paths::{Refused, Root, segments, url_path};
use crate::range::{Ranged, parse};
use crate::{access_log, listing};

/// What every connection of the server shares.
#[derive(Debug)]
pub struct Settings {
    /// The directory served.
    pub root: Root,
    /// How files reach the socket.
    pub transfer: TransferStrategy,
    /// Files at least this long are read with direct I/O (0: never).
    pub directio: u64,
    /// How long a request head may take to arrive.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may sit idle.
    pub keepalive_timeout: Duration,
    /// Connections served at once; more are answered 503.
    pub max_connections: usize,
    /// Whether to print an access-log line per response.
    pub log: bool,
    /// Connections open now.
    pub open: AtomicUsize,
}

/// Which timer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// A request head is on its way.
    Head,
    /// Between requests.
    Idle,
}

/// One connection.
pub struct FileServer {
    settings: Arc<Settings>,
    timer: Option<(TimerId, u64)>,
    generation: u64,
    waiting: Waiting,
    /// A request was decoded since the last read batch ended.
    got_request: bool,
    counted: bool,
    /// A response said `Connection: close`: requests pipelined behind it
    /// are not answered (RFC 9112 §9.6).
    closing: bool,
}

impl FileServer {
    /// A handler for one connection of the server described by `settings`.
    pub fn new(settings: Arc<Settings>) -> FileServer {
        FileServer {
            settings,
            timer: None,
            generation: 0,
            waiting: Waiting::Head,
            got_request: false,
            counted: false,
            closing: false,
        }
    }

    fn arm(&mut self, ctx: &mut Context<'_, HttpResponse>, waiting: Waiting) {
        self.disarm(ctx);
        self.generation += 1;
        self.waiting = waiting;
        let delay = match waiting {
            Waiting::Head => self.settings.header_timeout,
            Waiting::Idle => self.settings.keepalive_timeout,
        };
        let id = ctx.schedule(delay, self.generation);
        self.timer = Some((id, self.generation));
    }

    fn disarm(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        if let Some((id, _)) = self.timer.take() {
            ctx.cancel_timer(id);
        }
    }

    fn send(
        &self,
        ctx: &mut Context<'_, HttpResponse>,
        request: Option<&HttpRequest>,
        response: HttpResponse,
    ) {
        if self.settings.log {
            access_log::line(ctx.peer_addr(), request, &response);
        }
        ctx.write(response);
    }

    /// Sends a last response and closes once it is out.
    fn finish(&mut self, ctx: &mut Context<'_, HttpResponse>, response: HttpResponse) {
        self.closing = true;
        self.disarm(ctx);
        self.send(ctx, None, response);
        ctx.flush();
        ctx.close();
    }
}

impl Handler for FileServer {
    type In = Result<HttpRequest, HttpError>;
    type Out = HttpResponse;

    fn on_active(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        let open = self.settings.open.fetch_add(1, Ordering::AcqRel) + 1;
        self.counted = true;
        if open > self.settings.max_connections {
            // Politely: a response saying why, then close.
            let response =
                HttpResponse::text(StatusCode::SERVICE_UNAVAILABLE, "too many connections\n")
                    .header(RETRY_AFTER, HeaderValue::from_static("1"))
                    .close();
            self.finish(ctx, response);
            return;
        }
        self.arm(ctx, Waiting::Head);
    }

    fn on_read(
        &mut self,
        ctx: &mut Context<'_, HttpResponse>,
        msg: Result<HttpRequest, HttpError>,
    ) {
        if self.closing {
            return;
        }
        self.got_request = true;
        self.disarm(ctx);
        let request = match msg {
            Ok(request) => request,
            Err(error) => {
                self.finish(ctx, HttpResponse::from_error(&error));
                return;
            }
        };
        let mut response = respond(&self.settings, &request).keep_alive_for(&request);
        if request.method == Method::HEAD && !response.head_only && response.status_allows_body() {
            // The head a GET would get, never a body (a 404's included).
            let len = response.body.len();
            response = response.head_only(len);
        }
        self.send(ctx, Some(&request), response);
        if !ctx.is_writable() {
            // The client is not reading its answers: take no more requests
            // (pipelined ones already read wait) until it does.
            ctx.set_auto_read(false);
        }
        if request.keep_alive {
            self.arm(ctx, Waiting::Idle);
        } else {
            self.closing = true;
            ctx.flush();
            ctx.close();
        }
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        ctx.flush();
        // Bytes arrived but no complete request: a head is on its way.
        if !self.got_request && self.waiting == Waiting::Idle && !self.closing {
            self.arm(ctx, Waiting::Head);
        }
        self.got_request = false;
    }

    fn on_writability_changed(&mut self, ctx: &mut Context<'_, HttpResponse>, writable: bool) {
        if !self.closing {
            ctx.set_auto_read(writable);
        }
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, HttpResponse>, event: UserEvent) {
        let UserEvent::Timer(generation) = event else {
            return;
        };
        if self.timer.map(|(_, g)| g) != Some(generation) {
            return;
        }
        self.timer = None;
        if self.waiting == Waiting::Idle && ctx.pending_outbound_bytes() > 0 {
            // Still sending the last response: not idle.
            self.arm(ctx, Waiting::Idle);
            return;
        }
        if self.waiting == Waiting::Head {
            let response =
                HttpResponse::text(StatusCode::REQUEST_TIMEOUT, "request header timeout\n").close();
            self.finish(ctx, response);
        } else {
            self.closing = true;
            ctx.close();
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_, HttpResponse>, error: &ChannelError) {
        if self.settings.log {
            eprintln!("{:?}: {error}", ctx.peer_addr());
        }
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, HttpResponse>) {
        if std::mem::take(&mut self.counted) {
            self.settings.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The response to one well-formed request.
fn respond(settings: &Settings, request: &HttpRequest) -> HttpResponse {
    if request.method != Method::GET && request.method != Method::HEAD {
        return HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n")
            .header(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    locate(settings, request).unwrap_or_else(refusal)
}

/// The answer to a path that was refused.
fn refusal(refused: Refused) -> HttpResponse {
    match refused {
        Refused::BadRequest => HttpResponse::text(StatusCode::BAD_REQUEST, "bad path\n"),
        Refused::Forbidden => HttpResponse::text(StatusCode::FORBIDDEN, "forbidden\n"),
        Refused::NotFound => HttpResponse::text(StatusCode::NOT_FOUND, "not found\n"),
        Refused::Busy => HttpResponse::text(StatusCode::SERVICE_UNAVAILABLE, "busy, try again\n")
            .header(RETRY_AFTER, HeaderValue::from_static("1")),
        Refused::Failed => HttpResponse::text(StatusCode::INTERNAL_SERVER_ERROR, "cannot open\n"),
    }
}

/// Opens what the request names: a file, a directory's `index.html`, or a
/// directory listing.
fn locate(settings: &Settings, request: &HttpRequest) -> Result<HttpResponse, Refused> {
    let mut names = segments(request.path())?;
    let file = settings.root.open_file(&names)?;
    let meta = file.metadata().map_err(|_| Refused::Failed)?;
    if !meta.is_dir() {
        let name = names.last().map_or("", String::as_str);
        return Ok(serve_file(settings, request, file, &meta, name));
    }
    if !request.path().ends_with('/') {
        // Built from the normalized segments: never `//host`, which a
        // browser would follow to another site.
        let location =
            HeaderValue::from_str(&url_path(&names, true)).map_err(|_| Refused::BadRequest)?;
        return Ok(
            HttpResponse::text(StatusCode::MOVED_PERMANENTLY, "moved\n").header(LOCATION, location)
        );
    }
    names.push("index.html".to_string());
    if let Ok(index) = settings.root.open_file(&names)
        && let Ok(meta) = index.metadata()
        && meta.is_file()
    {
        return Ok(serve_file(settings, request, index, &meta, "index.html"));
    }
    names.pop();
    // The directory already opened, through its descriptor: no second walk
    // of the path.
    let dir = format!("/proc/self/fd/{}", file.as_raw_fd());
    let shown = if names.is_empty() {
        "/".to_string()
    } else {
        format!("/{}/", names.join("/"))
    };
    let page = listing::render(Path::new(&dir), &shown).map_err(|_| Refused::Forbidden)?;
    let response = HttpResponse::new(StatusCode::OK).header(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(if request.method == Method::HEAD {
        response.head_only(page.len() as u64)
    } else {
        response.body(page.as_str())
    })
}

/// A regular file (`name` gives its MIME type), whole or a range, or 304.
fn serve_file(
    settings: &Settings,
    request: &HttpRequest,
    file: File,
    meta: &Metadata,
    name: &str,
) -> HttpResponse {
    if !meta.is_file() {
        return HttpResponse::text(StatusCode::FORBIDDEN, "not a regular file\n");
    }
    let len = meta.len();
    let validators = Validators::of(meta);
    let mut response = HttpResponse::new(StatusCode::OK);
    for (header, value) in [
        (ETAG, validators.etag.as_str()),
        (LAST_MODIFIED, validators.last_modified.as_str()),
        (ACCEPT_RANGES, "bytes"),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            response = response.header(header, value);
        }
    }
    if not_modified(&request.headers, &validators) {
        response.status = StatusCode::NOT_MODIFIED;
        return response;
    }
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        response = response.header(CONTENT_TYPE, value);
    }
    let ranged = match request.header_str(RANGE) {
        Some(range) if range_applies(&request.headers, &validators) => parse(range, len),
        _ => Ranged::Full,
    };
    let (first, count) = match ranged {
        Ranged::Full => (0, len),
        Ranged::Part { first, last } => {
            response.status = StatusCode::PARTIAL_CONTENT;
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}")) {
                response = response.header(CONTENT_RANGE, value);
            }
            (first, last - first + 1)
        }
        Ranged::Unsatisfiable => {
            let mut refusal =
                HttpResponse::text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                refusal = refusal.header(CONTENT_RANGE, value);
            }
            return refusal;
        }
    };
    if request.method == Method::HEAD {
        return response.head_only(count);
    }
    let direct = settings.directio > 0 && count >= settings.directio;
    let region = FileRegion::new(file, first, count)
        .with_strategy(settings.transfer)
        .direct_io(direct);
    response.body(region)
}
