//! `file_server --metrics ADDR` (issue 13 §4): the file server serves
//! `GET /metrics` in Prometheus's text format on a second listener,
//! served by wharf itself, with the figures of the requests it answered;
//! and it still shuts down cleanly. In every reactor mode × trigger.

use std::time::Duration;

use crate::child::{ServerProcess, mode_args};
use crate::client::Client;
use crate::common::{self, Config};
use crate::site::Site;

pub fn metrics_are_served_on_a_second_listener() {
    let site = Site::new("metrics");
    site.write("a.txt", b"hello\n");
    let configs: Vec<Config> = Config::all().into_iter().filter(|c| c.pooled).collect();
    common::for_each_parallel(configs, |config| {
        let what = config.to_string();
        let mut flags = mode_args(config);
        flags.extend(["--metrics".to_string(), "127.0.0.1:0".to_string()]);
        let mut server = ServerProcess::start(&site.root, &flags, None);
        let line = server.wait_for_line(Duration::from_secs(20), |l| l.starts_with("metrics at "));
        let exporter = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("{what}: no address in {line:?}"));
        let mut client = Client::connect(server.addr);
        for _ in 0..3 {
            assert_eq!(client.get("/a.txt").body, b"hello\n", "{what}");
        }
        let mut scraper = Client::connect(exporter);
        let response = scraper.get("/metrics");
        assert_eq!(response.status, 200, "{what}");
        let content_type = response.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{what}"
        );
        let text = response.text();
        let decoded: f64 = text
            .lines()
            .filter(|l| l.starts_with("wharf_messages_decoded_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        assert_eq!(decoded, 3.0, "{what}: three requests decoded; {text}");
        assert!(text.contains("wharf_connections 1\n"), "{what}: {text}");
        drop((client, scraper));
        server.signal(libc::SIGTERM);
        let status = server
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{what}: still running 10 s after SIGTERM"));
        assert!(
            status.success(),
            "{what}: {status}; {:#?}",
            server.drain_output()
        );
    });
}
