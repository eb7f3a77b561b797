//! Edge versus level triggering: data left unread after the read budget is
//! delivered in both modes without any new data arriving (served from the
//! ready list with edge triggering, reported again by the kernel with
//! level triggering).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Config, connect, pattern, read_exact_n, write_all};
use wharf::buf::ByteBuf;
use wharf::{Context, Handler, Pipeline, RecvSize, Trigger};

/// Echoes, counting reads and bytes.
struct CountingEcho {
    bytes: Arc<AtomicUsize>,
}

impl Handler for CountingEcho {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        self.bytes.fetch_add(msg.len(), Ordering::Relaxed);
        ctx.write(msg);
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }
}

#[test]
fn data_left_after_the_read_budget_is_delivered_without_new_data() {
    const SENT: usize = 64 << 10;
    common::for_each(Config::all(), |config| {
        let bytes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&bytes);
        // One 64-byte read per readiness event: 1024 reads are needed.
        let server = config
            .server()
            .max_messages_per_read(1)
            .channel_config({
                let mut c = wharf::ChannelConfig {
                    allocator: config.allocator(),
                    ..Default::default()
                };
                c.recv_size = RecvSize {
                    min: 64,
                    initial: 64,
                    max: 64,
                };
                c.max_messages_per_read = 1;
                c
            })
            .child_handler(move || {
                Pipeline::bytes(CountingEcho {
                    bytes: Arc::clone(&counter),
                })
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let before = server.stats();
        let mut client = connect(server.local_addr());
        let data = pattern(3, SENT);
        // Sent once; nothing more arrives while the server works through it.
        write_all(&mut client, &data);
        let echoed = read_exact_n(&mut client, SENT);
        assert!(echoed == data, "{config}: echo differs");
        common::wait_until(Duration::from_secs(5), "all bytes counted", || {
            bytes.load(Ordering::Relaxed) == SENT
        });
        let stats = server.stats().since(&before);
        assert!(
            stats.reads >= (SENT / 64) as u64,
            "{config}: {} reads for {SENT} bytes in 64-byte reads",
            stats.reads
        );
        if config.trigger == Trigger::Level {
            // Every read but the first needed the kernel to report again.
            assert!(stats.polls >= stats.reads / 2, "{config}: {stats:?}");
        }
    });
}
