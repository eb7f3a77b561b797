//! Event loops give their cached buffers back when they go idle (issue 8
//! §2, point 11a; `PooledAllocator::trim_thread_cache` says "event loops
//! call this when idle").
//!
//! A server on a pooled allocator of its own (no empty chunk retained, no
//! decay delay, so memory that nobody holds is unmapped at once) echoes
//! traffic from a few clients, which then leave. Within a few seconds the
//! pool must have nothing mapped any more: no buffer is in use, so whatever
//! stays mapped is held by the loops' thread caches. (The metrics have no
//! count of cached bytes; `bytes_mapped` with nothing in use is what shows
//! them.) Every mode × trigger, side by side; the allocator is the test's
//! own, so pooled and unpooled configurations are the same here.

mod common;

use std::time::{Duration, Instant};

use common::{Config, pattern};
use wharf::Pipeline;
use wharf::buf::{Allocator, PoolConfig, PooledAllocator};
use wharf::transport::handlers::Echo;

#[test]
fn idle_loops_give_their_cached_buffers_back() {
    let configs: Vec<Config> = Config::all().into_iter().filter(|c| c.pooled).collect();
    common::concurrent::for_each_concurrently(configs, |config| {
        let pool = Allocator::from(PooledAllocator::new(PoolConfig {
            retained_chunks: 0,
            empty_chunk_decay: Duration::ZERO,
            ..PoolConfig::default()
        }));
        let server = config
            .server()
            .allocator(pool)
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("bind");
        let payloads: Vec<Vec<u8>> = (0..4).map(|i| pattern(i, 256 << 10)).collect();
        common::driver::echo_all(
            server.local_addr(),
            payloads,
            16 << 10,
            7,
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{config}: the echo traffic: {e}"));
        common::wait_for_no_connections(&server);
        let busy = pool.metrics();
        assert!(
            busy.allocations > 0,
            "{config}: the server allocated nothing from its pool"
        );

        // Idle now: the loops' caches must go back, and the chunks with them.
        let idle_since = Instant::now();
        let mut metrics = pool.metrics();
        while metrics.bytes_mapped > 0 && idle_since.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(20));
            metrics = pool.metrics();
        }
        assert!(
            metrics.bytes_mapped == 0,
            "{config}: {:?} after the last client left, the server's pool still maps {} bytes \
             ({} chunks) with {} bytes in use and {} pending returns: the loops' thread \
             caches were not trimmed ({} allocations, {} cache hits during the traffic)",
            idle_since.elapsed(),
            metrics.bytes_mapped,
            metrics.chunks_mapped,
            metrics.bytes_in_use,
            metrics.pending_returns,
            busy.allocations,
            busy.cache_hits
        );
    });
}
