//! A 400 MB `SET` (issue 13 §3): the value is received into one
//! allocation of its size, read straight into it, and stored as it is,
//! without a copy.
//!
//! The server has a pooled allocator of its own with 1 GiB chunks, so that
//! every buffer up to 1 GiB has a size class and the metrics say how large
//! each allocation was: exactly one allocation of at least the value's
//! size, and only a handful above the largest read buffer (the growing
//! reservation before the value is trusted, 64 KiB up to 32 MiB). A copy
//! of the value would be a second allocation of its size.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wharf::buf::{Allocator, AllocatorMetrics, PoolConfig, PooledAllocator};
use wharf::{ReactorMode, Trigger};

use crate::client::Client;
use crate::common::{self, Config};
use crate::server;
use crate::store::Store;

const LEN: usize = 400_000_000;
const MAX_READ: usize = 64 << 10;
/// Doubling from 64 KiB to a sixteenth of the value, then the value.
const MAX_GROWTH: u64 = 16;

/// Allocations of at least `size` bytes.
fn allocations_of_at_least(m: &AllocatorMetrics, size: usize) -> u64 {
    m.classes
        .iter()
        .filter(|c| c.size >= size)
        .map(|c| c.allocations)
        .sum()
}

#[test]
fn a_400_mb_set_is_received_into_one_allocation_and_stored_without_a_copy() {
    let configs = vec![
        Config {
            mode: ReactorMode::Single,
            trigger: Trigger::Edge,
            pooled: true,
        },
        Config {
            mode: ReactorMode::MultiReactor {
                sub_reactors: 2,
                workers: 2,
            },
            trigger: Trigger::Level,
            pooled: true,
        },
    ];
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    common::concurrent::for_each_reporting_all(configs, |config| {
        let pool = Allocator::from(PooledAllocator::new(PoolConfig {
            chunk_size: 1 << 30,
            ..PoolConfig::default()
        }));
        let store = Arc::new(Store::new(4));
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server =
            server::bind(config.server().allocator(pool), addr, Arc::clone(&store)).expect("bind");
        let mut client = Client::connect(server.local_addr());
        let header = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${LEN}\r\n");
        client.send(header.as_bytes());
        let mut sent = 0;
        while sent < LEN {
            // The pattern i % 251 over the whole value.
            let shift = sent % 251;
            let n = (chunk.len() - 251).min(LEN - sent);
            client.stream.write_all(&chunk[shift..shift + n]).unwrap();
            sent += n;
        }
        client.send(b"\r\n");
        client
            .stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(client.reply().unwrap(), b"+OK\r\n", "{config}");

        let metrics = pool.metrics();
        assert_eq!(
            allocations_of_at_least(&metrics, LEN),
            1,
            "{config}: allocations of the value's size or more"
        );
        let growth = allocations_of_at_least(&metrics, MAX_READ + 1);
        assert!(
            growth <= MAX_GROWTH,
            "{config}: {growth} allocations above 64 KiB"
        );
        let value = store
            .get(b"big", &crate::store::Clock::new())
            .expect("the value is stored");
        assert_eq!(value.len(), LEN);
        assert_eq!(value[LEN - 1], ((LEN - 1) % 251) as u8);
        assert!(
            value
                .iter()
                .enumerate()
                .step_by(4093)
                .all(|(i, &b)| b == (i % 251) as u8)
        );
        eprintln!(
            "{config}: {growth} allocations above 64 KiB for a {LEN}-byte value, \
             {} bytes in use",
            metrics.bytes_in_use
        );
        drop(value);
        assert_eq!(client.call(&["DEL", "big"]), ":1\r\n");
        drop(client);
        common::wait_for_no_connections(&server);
    });
}
