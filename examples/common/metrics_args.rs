//! The `--metrics ADDR` flag of the server examples: the server's metrics
//! served at `http://ADDR/metrics` (Prometheus's text format) by a second
//! wharf server, started and stopped the same way everywhere.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use wharf::Server;

/// The metrics flag.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// Also serve the server's metrics at http://ADDR/metrics (Prometheus
    /// text format), on a second listener.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
}

impl MetricsArgs {
    /// Starts the exporter for `server` if the flag asked for one, and
    /// says where it listens.
    pub fn serve(&self, server: &Server) -> io::Result<Exporter> {
        let Some(addr) = self.metrics else {
            return Ok(Exporter(None));
        };
        let exporter = wharf::metrics::serve(addr, server.metrics_handle())
            .map_err(|e| io::Error::new(e.kind(), format!("--metrics {addr}: {e}")))?;
        println!("metrics at http://{}/metrics", exporter.local_addr());
        Ok(Exporter(Some(exporter)))
    }
}

/// The running exporter, if any.
#[derive(Debug)]
pub struct Exporter(Option<Server>);

impl Exporter {
    /// Stops it (after the server it reports on).
    pub fn stop(mut self) -> io::Result<()> {
        match self.0.as_mut() {
            Some(exporter) => exporter.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1)),
            None => Ok(()),
        }
    }
}
