//! `GET /metrics` (issue 13 §4): `wharf::metrics::serve` answers with the
//! server's figures in Prometheus's text format, on a listener of its own,
//! served by wharf itself; in every mode × trigger of the watched server.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::{Config, connect, for_each_parallel, wait_until};
use wharf::buf::ByteBuf;
use wharf::codec::LineCodec;
use wharf::{Context, Handler, Pipeline};

struct EchoLines;

impl Handler for EchoLines {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, line: ByteBuf) {
        ctx.write_and_flush(line);
    }
}

/// One request on its own connection: the status line, the head, the body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (String, String, String) {
    let mut stream = connect(addr);
    let request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("the response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The value of the sample `series` (name and labels as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_are_served_in_prometheus_text_format() {
    for_each_parallel(Config::all(), |config| {
        let server = config
            .server()
            .handler_timing(1)
            .child_handler(|| Pipeline::new(LineCodec::new(64), EchoLines))
            .bind("127.0.0.1:0")
            .expect("bind");
        let exporter =
            wharf::metrics::serve("127.0.0.1:0", server.metrics_handle()).expect("the exporter");
        let mut client = connect(server.local_addr());
        client.write_all(b"one\r\ntwo\r\n").expect("send");
        let mut echo = [0; 10];
        client.read_exact(&mut echo).expect("the echo");
        wait_until(Duration::from_secs(20), "two messages counted", || {
            server.metrics().total().stats.messages_decoded == 2
        });

        let (status, head, body) = http(exporter.local_addr(), "GET", "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK", "{config}");
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        // Every line is a comment or `name{labels} value`.
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("a sample");
            assert!(series.starts_with("wharf_"), "{line}");
            assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
        }
        assert!(body.contains("# TYPE wharf_messages_decoded_total counter"));
        let decoded: f64 = (0..8)
            .filter_map(|id| {
                sample(
                    &body,
                    &format!("wharf_messages_decoded_total{{loop=\"{id}\"}}"),
                )
            })
            .sum();
        assert_eq!(decoded, 2.0, "{config}: {body}");
        assert_eq!(sample(&body, "wharf_connections"), Some(1.0), "{config}");
        assert!(body.contains("# TYPE wharf_loop_lag_seconds histogram"));
        assert!(body.contains("wharf_loop_lag_seconds_bucket{loop=\"0\",le=\"+Inf\"}"));
        assert!(body.contains("wharf_events_per_poll_bucket{loop=\"0\",le=\"1024\"}"));
        assert!(body.contains("# TYPE wharf_handler_seconds histogram"));
        assert!(body.contains("wharf_allocator_in_use_bytes "));
        if config.mode.workers() > 0 {
            assert!(
                body.contains("wharf_worker_tasks_total{worker=\"0\"}"),
                "{body}"
            );
        }

        let (status, head, body) = http(exporter.local_addr(), "HEAD", "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(head.contains("content-length: "), "{head}");
        assert!(body.is_empty());
        assert_eq!(
            http(exporter.local_addr(), "GET", "/").0,
            "HTTP/1.1 404 Not Found"
        );
        let (status, head, _) = http(exporter.local_addr(), "POST", "/metrics");
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
        assert!(head.contains("allow: get, head"), "{head}");
        drop(client);
        common::wait_for_no_connections(&server);
    });
}
