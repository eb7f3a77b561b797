//! A TLS 1.3 peer that sends key updates cannot make a server work or
//! queue without bound, in every reactor mode × trigger × allocator: 32
//! in a row are answered, the 33rd without application data between them
//! fails the channel, as rustls's own record layer does. (The answers to
//! requests also count against the water marks; on loopback the kernel's
//! buffers took 30 000 answers to a peer that never read, so no test here
//! reaches the server's own queue.)

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::Config;
use common::tls::{Client, Pki, Seen};
use wharf::prelude::*;
use wharf::tls::TlsError;
use wharf::tls::rustls::version::TLS13;

#[test]
fn too_many_key_updates_in_a_row_fail_the_channel() {
    let pki = Pki::new("kuflood", &["ku.test"]);
    let client_config = Arc::new(pki.rustls_client_with(&[&TLS13], &[]));
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let probe = seen.clone();
        let server = config
            .server()
            .tls(pki.server("ku.test"))
            .child_handler(move || Pipeline::bytes(probe.probe(true)))
            .bind("127.0.0.1:0")
            .expect("bind");
        // 32 in a row are answered like any other.
        let mut c = Client::connect(server.local_addr(), client_config.clone(), "ku.test")
            .unwrap_or_else(|e| panic!("{config}: handshake: {e}"));
        c.echo(b"before").expect("echo before");
        for _ in 0..32 {
            c.tls.refresh_traffic_keys().expect("key update");
        }
        c.tls.writer().write_all(b"after 32").expect("plaintext");
        let flight = c.take_tls();
        c.tcp.write_all(&flight).expect("send");
        assert_eq!(
            c.recv_exact(8)
                .unwrap_or_else(|e| panic!("{config}: after 32 updates: {e}")),
            b"after 32",
            "{config}"
        );
        assert!(seen.errors().is_empty(), "{config}: {:?}", seen.errors());
        // The 33rd in a row fails the channel.
        for _ in 0..33 {
            c.tls.refresh_traffic_keys().expect("key update");
        }
        let flight = c.take_tls();
        c.tcp.write_all(&flight).expect("send");
        common::wait_until(
            Duration::from_secs(5),
            "the channel to fail on the 33rd key update",
            || !seen.errors().is_empty(),
        );
        assert!(
            matches!(seen.errors()[..], [TlsError::Protocol(_)]),
            "{config}: {:?}",
            seen.errors()
        );
        common::wait_for_no_connections(&server);
    });
}
