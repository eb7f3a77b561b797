//! A connection limit asked for is capped to what the descriptor limit
//! allows (issue 9, point 3: the framework's own `max_connections` takes
//! the same care as the file server's): with room for only about forty
//! connections, `max_connections(10_000)` becomes the room left, the
//! connections beyond it are closed at once (an orderly end of stream),
//! the ones within it are served, descriptors never run out (so the server
//! could still open files), and a client arriving after others left is
//! served.
//!
//! A test binary of its own: it lowers the process's descriptor limit.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{Config, connect, read_exact_n, write_all};
use wharf::transport::handlers::Echo;
use wharf::transport::sys::limits;
use wharf::{Pipeline, ReactorMode, Trigger};

/// Puts the soft descriptor limit back when dropped.
struct RestoreLimit(u64);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        let _ = limits::set_fd_soft_limit(self.0);
    }
}

#[test]
fn max_connections_is_capped_to_the_descriptor_limit() {
    let (soft, _) = limits::fd_limits().expect("the descriptor limits");
    let _restore = RestoreLimit(soft);
    let open = limits::open_descriptors().expect("open descriptors") as u64;
    // Room for the loop, the reserve and about 40 connections. The test's
    // own client sockets share the table with the server's: with C
    // connections served, C + 20 clients and C accepted sockets fit in
    // `open + 71 + C` for C up to 47.
    limits::set_fd_soft_limit(open + 111).expect("lower the descriptor limit");
    for trigger in [Trigger::Edge, Trigger::Level] {
        let config = Config {
            mode: ReactorMode::Single,
            trigger,
            pooled: true,
        };
        let server = config
            .server()
            .max_connections(10_000)
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("bind");
        let cap = server.max_connections().expect("a limit in force");
        assert!(
            (20..=60).contains(&cap),
            "{trigger:?}: max_connections(10 000) became {cap}, not the room the descriptor limit leaves"
        );
        let mut served = Vec::new();
        let mut closed = 0;
        for i in 0..(cap + 20) {
            let mut client = connect(server.local_addr());
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("read timeout");
            if i < cap {
                write_all(&mut client, b"hello");
                assert_eq!(
                    read_exact_n(&mut client, 5),
                    b"hello",
                    "{trigger:?}: client {i}"
                );
                served.push(client);
            } else {
                // Accepted and closed at once: end of stream, no echo.
                let mut byte = [0u8; 1];
                let n = client.read(&mut byte).unwrap_or(0);
                assert_eq!(n, 0, "{trigger:?}: client {i} over the limit was served");
                closed += 1;
            }
        }
        assert_eq!(closed, 20);
        assert_eq!(
            server.stats().accepts,
            (cap + 20) as u64,
            "{trigger:?}: no accept failed"
        );
        // Some leave; a newcomer is served.
        served.truncate(cap - 10);
        common::wait_until(
            Duration::from_secs(5),
            "the server to see them leave",
            || server.connections() <= cap - 10,
        );
        let mut late = connect(server.local_addr());
        write_all(&mut late, b"again");
        assert_eq!(
            read_exact_n(&mut late, 5),
            b"again",
            "{trigger:?}: a later client"
        );
        drop((served, late));
        common::wait_for_no_connections(&server);
    }
}
