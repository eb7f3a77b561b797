//! Echo in every reactor mode × trigger × allocator: 100 concurrent
//! connections, random payloads up to 1 MiB sent in writes of random sizes
//! up to 1 MiB, compared byte for byte.

mod common;

use std::time::Duration;

use common::{Config, Rng, driver, pattern};
use wharf::Pipeline;
use wharf::transport::handlers::Echo;

#[test]
fn hundred_connections_echo_random_payloads_byte_for_byte() {
    common::for_each(Config::all(), |config| {
        let server = config
            .server()
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut rng = Rng::new(0x5eed);
        let payloads: Vec<Vec<u8>> = (0..100)
            .map(|i| {
                // Mostly small, some up to 1 MiB: about 20 MiB in all.
                let len = if i % 10 == 0 {
                    rng.range(1, 1 << 20)
                } else {
                    rng.range(1, 64 << 10)
                };
                pattern(i, len)
            })
            .collect();
        driver::echo_all(
            server.local_addr(),
            payloads,
            1 << 20,
            7,
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{config}: {e}"));
    });
}
