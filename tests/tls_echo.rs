//! Echo over TLS in every reactor mode × trigger × allocator: random
//! payloads up to 1 MiB in writes of random sizes up to 1 MiB, byte for
//! byte, against a rustls client that does not go through wharf; and the
//! framework's metrics count those connections and their bytes on the
//! wire (issue 13 §4 under TLS).

mod common;

use std::time::Duration;

use common::tls::{self, Pki};
use common::{Config, Rng, pattern, wait_until};
use wharf::Pipeline;
use wharf::transport::handlers::Echo;

#[test]
fn echo_over_tls_random_payloads_byte_for_byte() {
    let pki = Pki::new("echo", &["echo.test"]);
    let client = pki.rustls_client();
    common::for_each(Config::all(), |config| {
        let server = config
            .server()
            .tls(pki.server("echo.test"))
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut rng = Rng::new(0x7115);
        let count: u64 = 24;
        let payloads: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                let len = if i % 6 == 0 {
                    rng.range(1, 1 << 20)
                } else {
                    rng.range(1, 64 << 10)
                };
                pattern(i, len)
            })
            .collect();
        let plaintext: u64 = payloads.iter().map(|p| p.len() as u64).sum();
        tls::echo_all(
            server.local_addr(),
            client.clone(),
            "echo.test",
            payloads,
            1 << 20,
            11,
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{config}: {e}"));
        wait_until(Duration::from_secs(20), "every connection closed", || {
            server.metrics().total().stats.connections_closed == count
        });
        let t = server.metrics().total();
        assert_eq!(t.stats.accepts, count, "{config}");
        assert_eq!(t.stats.connections_opened, count, "{config}");
        // What crossed the sockets: records, their headers and tags, and
        // the handshakes, so more than the plaintext each way.
        assert!(t.stats.bytes_read > plaintext, "{config}: {:?}", t.stats);
        assert!(t.stats.bytes_written > plaintext, "{config}: {:?}", t.stats);
        assert!(t.stats.messages_decoded > 0, "{config}");
        assert_eq!(t.outbound_queued, 0, "{config}: every queued byte was sent");
    });
}
