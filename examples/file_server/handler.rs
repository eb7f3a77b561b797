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
//! A response in progress whose reader stops (no write progress for the
//! close timeout, kept alive or not) is reset by the transport (its write
//! timeout, set by the bootstrap). Every 503 closes its connection. When
//! the server shuts down, the transport tells the handler, which closes
//! (`shut_down`); a connection closed after its last response lingers
//! (the transport's lingering close), so the response is not lost to a
//! reset over requests the client pipelined behind it.
//!
//! Uploads (`--upload`): a PUT's body is received into its file by the
//! transport (see [`crate::upload`]); the handler answers once it is all
//! in. An upload that makes no progress for the header timeout is
//! answered 408 and closed, and whatever ends it early (the client going
//! away, the file failing) leaves nothing behind.
//!
//! Backpressure: while the connection's output is above its high water
//! mark (a client pipelining requests without reading the answers), the
//! handler stops reading, so such a client holds one connection's worth of
//! memory and descriptors, not more. Likewise while a response is prepared
//! on the open pool (network file systems): one request at a time.

use std::sync::Arc;

use http::header::RETRY_AFTER;
use http::{HeaderValue, Method, StatusCode};
use wharf::codec::{HttpError, HttpRequest, HttpResponse};
use wharf::{ChannelError, Context, FileReceive, Handler, Received, TransferStrategy, UserEvent};

use crate::access_log;
use crate::deadline::Deadline;
use crate::respond::respond;
use crate::settings::Settings;
use crate::upload::{self, Upload};

/// A response prepared on the open pool, on its way back to the handler.
struct Prepared {
    request: HttpRequest,
    response: HttpResponse,
}

/// Which timer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// A request head is on its way.
    Head,
    /// Between requests.
    Idle,
    /// An upload's body is on its way.
    Body,
}

/// An upload whose body the transport is receiving.
struct Uploading {
    upload: Upload,
    request: HttpRequest,
    /// Bytes in its file at the last progress check.
    seen: u64,
}

/// One connection.
pub struct FileServer {
    settings: Arc<Settings>,
    /// The timeout of what `waiting` says.
    deadline: Deadline,
    waiting: Waiting,
    /// A request was decoded since the last read batch ended.
    got_request: bool,
    /// Registered with the server's connections.
    registered: bool,
    /// The server is shutting down: close after the response in progress.
    shutting_down: bool,
    /// A response said `Connection: close`: requests pipelined behind it
    /// are not answered (RFC 9112 §9.6).
    closing: bool,
    /// A request is being answered on the open pool: the next waits.
    awaiting: bool,
    /// Whether reading is on, as last set.
    reading: bool,
    /// The keep-alive timer found a response still being sent.
    sending: bool,
    /// An upload under way.
    uploading: Option<Uploading>,
}

impl FileServer {
    /// A handler for one connection of the server described by `settings`.
    pub fn new(settings: Arc<Settings>) -> FileServer {
        FileServer {
            settings,
            deadline: Deadline::default(),
            waiting: Waiting::Head,
            got_request: false,
            registered: false,
            shutting_down: false,
            closing: false,
            awaiting: false,
            reading: true,
            sending: false,
            uploading: None,
        }
    }

    /// A PUT with uploads on: receive its body into a temporary file, or
    /// refuse it before any byte is written.
    fn start_upload(&mut self, ctx: &mut Context<'_, HttpResponse>, request: HttpRequest) {
        let (upload, file) = match upload::begin(&self.settings, &request) {
            Ok(started) => started,
            Err(refusal) if request.unread_body.is_some() => {
                // The body was not read and will not be: answer, then close
                // (the lingering close drops what the client still sends).
                self.send(ctx, Some(&request), refusal.response().close());
                self.close_after(ctx);
                return;
            }
            Err(refusal) => return self.answer(ctx, request, refusal.response()),
        };
        if upload.len == 0 {
            return self.stored(ctx, upload, request);
        }
        if upload.expects_continue {
            ctx.write(HttpResponse::new(StatusCode::CONTINUE));
            ctx.flush();
        }
        let splice = self.settings.transfer != TransferStrategy::ReadWrite;
        ctx.receive_file(FileReceive::new(file, 0, upload.len).splice(splice));
        self.uploading = Some(Uploading {
            upload,
            request,
            seen: 0,
        });
        self.arm(ctx, Waiting::Body);
    }

    /// The body is all in: rename it into place and answer.
    fn stored(
        &mut self,
        ctx: &mut Context<'_, HttpResponse>,
        upload: Upload,
        request: HttpRequest,
    ) {
        let response = match upload.commit() {
            Ok(stored) => stored.response(),
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                HttpResponse::text(StatusCode::CONFLICT, "a directory is in the way\n")
            }
            Err(e) => HttpResponse::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot store the upload: {e}\n"),
            ),
        };
        self.answer(ctx, request, response);
    }

    /// An upload ended: stored, or (the client went away, the file could
    /// not be written) dropped with its temporary file.
    fn upload_ended(&mut self, ctx: &mut Context<'_, HttpResponse>, received: Received) {
        let Some(Uploading {
            upload, request, ..
        }) = self.uploading.take()
        else {
            return;
        };
        self.disarm(ctx);
        drop(received.file);
        match received.result {
            Ok(()) => self.stored(ctx, upload, request),
            Err(e) if !self.closing => {
                // The rest of the body is unread: answer and close. A full
                // disk (or quota) says so: 507.
                let status = match e.raw_os_error() {
                    Some(libc::ENOSPC | libc::EDQUOT) => StatusCode::INSUFFICIENT_STORAGE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let response =
                    HttpResponse::text(status, &format!("cannot store the upload: {e}\n"));
                self.send(ctx, Some(&request), response.close());
                self.close_after(ctx);
            }
            Err(_) => {}
        }
        ctx.flush();
    }

    /// The body timer fired: an upload that made progress goes on, one
    /// that made none is answered 408 and closed.
    fn check_upload(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        let Some(uploading) = &mut self.uploading else {
            return;
        };
        let received = uploading.upload.received();
        if received > uploading.seen {
            uploading.seen = received;
            self.arm(ctx, Waiting::Body);
            return;
        }
        let response = HttpResponse::text(StatusCode::REQUEST_TIMEOUT, "upload timeout\n").close();
        self.finish(ctx, response);
    }

    /// Reads while the client takes its answers and no answer is being
    /// prepared on the open pool. A client that pipelines without reading
    /// gets no more requests taken on (those already read wait, in order)
    /// until it does.
    fn update_reading(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        if self.closing {
            return;
        }
        let reading = !self.awaiting && ctx.is_writable();
        if reading != self.reading {
            self.reading = reading;
            ctx.set_auto_read(reading);
        }
    }

    /// The server is shutting down: close now, or after the response being
    /// prepared (what was written is still sent: closing flushes). Guarded
    /// by tests/file_server_process/signals.rs `a_clean_shutdown_exits_zero`
    /// and tests/file_server/shutdown.rs.
    fn shut_down(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        self.shutting_down = true;
        if self.closing || self.awaiting || self.uploading.is_some() {
            return;
        }
        self.closing = true;
        self.disarm(ctx);
        ctx.close();
    }

    /// Sends the response to `request` and sets the timers for what
    /// follows: a close, or the keep-alive timeout.
    fn answer(
        &mut self,
        ctx: &mut Context<'_, HttpResponse>,
        request: HttpRequest,
        response: HttpResponse,
    ) {
        // A 503 says the server is short of descriptors or memory: its
        // connection goes too (issue 9, point 3), rather than be held for
        // the keep-alive time.
        let keep_alive = request.keep_alive
            && !self.shutting_down
            && response.status != StatusCode::SERVICE_UNAVAILABLE;
        let mut response = response.keep_alive_for(&request);
        if !keep_alive {
            response = response.close();
        }
        if request.method == Method::HEAD && !response.head_only && response.status_allows_body() {
            // The head a GET would get, never a body (a 404's included).
            let len = response.body.len();
            response = response.head_only(len);
        }
        self.send(ctx, Some(&request), response);
        if keep_alive {
            self.arm(ctx, Waiting::Idle);
            self.update_reading(ctx);
        } else {
            self.close_after(ctx);
        }
    }

    fn arm(&mut self, ctx: &mut Context<'_, HttpResponse>, waiting: Waiting) {
        self.waiting = waiting;
        let delay = match waiting {
            Waiting::Head | Waiting::Body => self.settings.header_timeout,
            Waiting::Idle => self.settings.keepalive_timeout,
        };
        self.deadline.set(ctx, delay);
    }

    fn disarm(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        self.deadline.cancel(ctx);
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
        self.send(ctx, None, response);
        self.close_after(ctx);
    }

    /// Closes once the responses written are sent. The transport lingers
    /// while the client is still sending (requests it pipelined behind a
    /// `Connection: close`): closing at once with them unread would make the
    /// kernel reset the connection and drop the responses not yet sent
    /// (RFC 9112 §9.6; a 503 that closes must reach the client, issue 9,
    /// point 3). Guarded by tests/file_server/connections.rs
    /// `a_response_before_a_close_survives_unread_pipelined_requests`.
    fn close_after(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        self.closing = true;
        self.disarm(ctx);
        ctx.flush();
        ctx.close();
    }
}

impl Handler for FileServer {
    type In = Result<HttpRequest, HttpError>;
    type Out = HttpResponse;

    fn on_active(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        let Some(open) = self.settings.connections.opened() else {
            let response = HttpResponse::text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                .header(RETRY_AFTER, HeaderValue::from_static("1"))
                .close();
            self.finish(ctx, response);
            return;
        };
        self.registered = true;
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
        // No timeout while the request is answered; the timer stays armed
        // (see `crate::deadline`): the answer sets the keep-alive time.
        self.deadline.clear();
        let request = match msg {
            Ok(request) => request,
            Err(error) => {
                // The codec reads nothing more after an error, and the
                // transport closes once the answer is sent.
                self.closing = true;
                self.disarm(ctx);
                self.send(ctx, None, HttpResponse::from_error(&error));
                ctx.flush();
                ctx.close();
                return;
            }
        };
        if request.method == Method::PUT && self.settings.upload {
            // Creating and renaming the file happen here, also when opens
            // go to the pool (a network file system): a known limit.
            self.start_upload(ctx, request);
            return;
        }
        if self.settings.open_pool.is_none() {
            let response = respond(&self.settings, &request);
            self.answer(ctx, request, response);
            return;
        }
        // Opens may block here: prepare the response on the pool, and take
        // no other request until it is back.
        self.awaiting = true;
        self.update_reading(ctx);
        let settings = Arc::clone(&self.settings);
        let handle = ctx.handle();
        let Some(pool) = &self.settings.open_pool else {
            return;
        };
        pool.submit(move || {
            let response = respond(&settings, &request);
            handle.fire_user_event(Box::new(Prepared { request, response }));
        });
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        ctx.flush();
        // Bytes arrived but no complete request: a head is on its way.
        if !self.got_request && self.waiting == Waiting::Idle && !self.closing {
            self.arm(ctx, Waiting::Head);
        }
        self.got_request = false;
    }

    fn on_writability_changed(&mut self, ctx: &mut Context<'_, HttpResponse>, _writable: bool) {
        self.update_reading(ctx);
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, HttpResponse>, event: UserEvent) {
        let generation = match event {
            UserEvent::Timer(generation) => generation,
            UserEvent::Custom(event) => {
                if let Ok(prepared) = event.downcast::<Prepared>()
                    && !self.closing
                {
                    self.awaiting = false;
                    self.answer(ctx, prepared.request, prepared.response);
                    ctx.flush();
                }
                return;
            }
            UserEvent::Shutdown => {
                self.shut_down(ctx);
                return;
            }
            UserEvent::Received(received) => {
                self.upload_ended(ctx, received);
                return;
            }
            _ => return,
        };
        if !self.deadline.fired(ctx, generation) {
            return;
        }
        if self.waiting == Waiting::Body {
            self.check_upload(ctx);
            return;
        }
        if self.waiting == Waiting::Idle && ctx.pending_outbound_bytes() > 0 {
            // Still sending the last response: not idle (a reader that
            // stopped is `stalled`, not idle).
            self.sending = true;
            self.arm(ctx, Waiting::Idle);
            return;
        }
        if self.waiting == Waiting::Idle && std::mem::take(&mut self.sending) {
            // The response went out since the last check, at most a period
            // ago: the idle time counts from about now.
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
        // An upload cut short leaves nothing behind (its drop removes the
        // temporary file).
        self.uploading = None;
        if std::mem::take(&mut self.registered) {
            self.settings.connections.closed();
        }
    }
}
