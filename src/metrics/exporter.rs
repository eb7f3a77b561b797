//! `GET /metrics` on a listener of its own, served by a small wharf server
//! (one event loop, wharf's own HTTP/1.1 codec): an exporter needs no
//! other HTTP stack, and scraping a busy server costs its loops nothing
//! but the atomics a snapshot reads.

use std::io;
use std::net::ToSocketAddrs;

use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use wharf_codec::{HttpError, HttpRequest, HttpResponse, HttpServerCodec};
use wharf_transport::{Context, Handler, MetricsHandle, Pipeline, Server, ServerBootstrap};

/// Serves `GET /metrics` (and `HEAD`) at `addr` with the figures `source`
/// gives, in Prometheus's text format ([`render`](super::render)); other
/// paths are answered 404, other methods 405.
///
/// The exporter is a single-loop wharf server of its own (threads named
/// `wharf-metrics`, at most 64 connections): shut it down with the server
/// it watches, or drop it.
pub fn serve(addr: impl ToSocketAddrs, source: MetricsHandle) -> io::Result<Server> {
    ServerBootstrap::new()
        .thread_name("wharf-metrics")
        .max_connections(64)
        .child_handler(move || {
            Pipeline::new(
                HttpServerCodec::new(),
                Endpoint {
                    source: source.clone(),
                },
            )
        })
        .bind(addr)
}

/// One exporter connection.
struct Endpoint {
    source: MetricsHandle,
}

impl Endpoint {
    fn answer(&self, request: &HttpRequest) -> HttpResponse {
        if request.uri.path() != "/metrics" {
            return HttpResponse::text(StatusCode::NOT_FOUND, "not found: try /metrics\n");
        }
        if request.method != Method::GET && request.method != Method::HEAD {
            return HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n")
                .header(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        let text = super::render(&self.source.snapshot());
        let response = HttpResponse::new(StatusCode::OK)
            .header(CONTENT_TYPE, HeaderValue::from_static(super::CONTENT_TYPE));
        if request.is_head() {
            response.head_only(text.len() as u64)
        } else {
            response.body(text.as_str())
        }
    }
}

impl Handler for Endpoint {
    type In = Result<HttpRequest, HttpError>;
    type Out = HttpResponse;

    fn on_read(&mut self, ctx: &mut Context<'_, HttpResponse>, request: Self::In) {
        match request {
            Ok(request) => {
                ctx.write(self.answer(&request).keep_alive_for(&request));
                if !request.keep_alive {
                    ctx.flush();
                    ctx.close();
                }
            }
            Err(error) => {
                ctx.write(HttpResponse::from_error(&error));
                ctx.flush();
                ctx.close();
            }
        }
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, HttpResponse>) {
        ctx.flush();
    }
}
