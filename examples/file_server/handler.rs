//! The per-connection handler: answers GET and HEAD with files, ranges,
//! 304s and directory listings, and keeps slow or idle clients from holding
//! the server.
//!
//! Timeouts: while a request head is on its way (from the first byte, or
//! from the start of the connection) the header timeout runs, so a client
//! that trickles a header one byte a second (slowloris) is answered 408 and
//! closed; between requests on a kept-alive connection the idle timeout
//! runs and the connection is closed quietly.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::header::{
    ACCEPT_RANGES, ALLOW, CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION, RANGE,
};
use http::{HeaderValue, Method, StatusCode};
use wharf::codec::{HttpError, HttpRequest, HttpResponse};
use wharf::{ChannelError, Context, FileRegion, Handler, TimerId, TransferStrategy, UserEvent};

use crate::conditional::{Validators, not_modified, range_applies};
use crate::paths::{Refused, resolve};
use crate::range::{Ranged, parse};
use crate::{access_log, listing};

/// What every connection of the server shares.
#[derive(Debug)]
pub struct Settings {
    /// The canonical root directory.
    pub root: std::path::PathBuf,
    pub transfer: TransferStrategy,
    /// Files at least this long are read with direct I/O (0: never).
    pub directio: u64,
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_connections: usize,
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
}

impl FileServer {
    pub fn new(settings: Arc<Settings>) -> FileServer {
        FileServer {
            settings,
            timer: None,
            generation: 0,
            waiting: Waiting::Head,
            got_request: false,
            counted: false,
        }
    }

    fn arm(&mut self, ctx: &mut Context<'_, HttpResponse>, waiting: Waiting) {
        if let Some((id, _)) = self.timer.take() {
            ctx.cancel_timer(id);
        }
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
                    .header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
                    .close();
            self.send(ctx, None, response);
            ctx.flush();
            ctx.close();
            return;
        }
        self.arm(ctx, Waiting::Head);
    }

    fn on_read(
        &mut self,
        ctx: &mut Context<'_, HttpResponse>,
        msg: Result<HttpRequest, HttpError>,
    ) {
        self.got_request = true;
        self.disarm(ctx);
        match msg {
            Ok(request) => {
                let response = respond(&self.settings, &request).keep_alive_for(&request);
                self.send(ctx, Some(&request), response);
                if request.keep_alive {
                    self.arm(ctx, Waiting::Idle);
                } else {
                    ctx.flush();
                    ctx.close();
                }
            }
            Err(error) => {
                self.send(ctx, None, HttpResponse::from_error(&error));
                ctx.flush();
                ctx.close();
            }
        }
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        ctx.flush();
        // Bytes arrived but no complete request: a head is on its way.
        if !self.got_request && self.waiting == Waiting::Idle {
            self.arm(ctx, Waiting::Head);
        }
        self.got_request = false;
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, HttpResponse>, event: UserEvent) {
        let UserEvent::Timer(generation) = event else {
            return;
        };
        if self.timer.map(|(_, g)| g) != Some(generation) {
            return;
        }
        self.timer = None;
        if self.waiting == Waiting::Head {
            let response =
                HttpResponse::text(StatusCode::REQUEST_TIMEOUT, "request header timeout\n").close();
            self.send(ctx, None, response);
            ctx.flush();
        }
        ctx.close();
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
    let path = match resolve(&settings.root, request.path()) {
        Ok(path) => path,
        Err(Refused::BadRequest) => {
            return HttpResponse::text(StatusCode::BAD_REQUEST, "bad path\n");
        }
        Err(Refused::Forbidden) => return HttpResponse::text(StatusCode::FORBIDDEN, "forbidden\n"),
        Err(Refused::NotFound) => return HttpResponse::text(StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut file_path = path.clone();
    if path.is_dir() {
        if !request.path().ends_with('/') {
            let location = format!("{}/", request.path());
            return match HeaderValue::from_str(&location) {
                Ok(location) => HttpResponse::text(StatusCode::MOVED_PERMANENTLY, "moved\n")
                    .header(LOCATION, location),
                Err(_) => HttpResponse::text(StatusCode::BAD_REQUEST, "bad path\n"),
            };
        }
        let index = path.join("index.html");
        if index.is_file() {
            file_path = index;
        } else {
            return match listing::render(&path, request.path()) {
                Ok(page) => {
                    let response = HttpResponse::new(StatusCode::OK).header(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    );
                    if request.method == Method::HEAD {
                        response.head_only(page.len() as u64)
                    } else {
                        response.body(page.as_str())
                    }
                }
                Err(_) => HttpResponse::text(StatusCode::FORBIDDEN, "cannot list\n"),
            };
        }
    }
    serve_file(settings, request, &file_path)
}

fn serve_file(settings: &Settings, request: &HttpRequest, path: &std::path::Path) -> HttpResponse {
    // Metadata from the open descriptor: what we stat is what we send.
    let (file, meta) = match File::open(path).and_then(|f| f.metadata().map(|m| (f, m))) {
        Ok(pair) => pair,
        Err(_) => return HttpResponse::text(StatusCode::NOT_FOUND, "not found\n"),
    };
    if !meta.is_file() {
        return HttpResponse::text(StatusCode::FORBIDDEN, "not a regular file\n");
    }
    let len = meta.len();
    let validators = Validators::of(&meta);
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = HttpResponse::new(StatusCode::OK);
    for (name, value) in [
        (ETAG, validators.etag.as_str()),
        (LAST_MODIFIED, validators.last_modified.as_str()),
        (ACCEPT_RANGES, "bytes"),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            response = response.header(name, value);
        }
    }
    if not_modified(&request.headers, &validators) {
        response.status = StatusCode::NOT_MODIFIED;
        return response;
    }
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
            let range = format!("bytes {first}-{last}/{len}");
            if let Ok(value) = HeaderValue::from_str(&range) {
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
