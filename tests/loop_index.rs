//! The per-connection pipeline factory learns its event loop (issue 13
//! §1): `child_handler_on_loop` hands it the index of the I/O loop the
//! connection is registered on, in `0..mode.io_loops()` in every mode, the
//! same number `Context::event_loop().id()` gives the handler, so state
//! sharded per loop is picked without a `thread_local!`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Config, EventLog, connect, for_each_parallel};
use wharf::buf::ByteBuf;
use wharf::{Context, Handler, Pipeline, RawBytes, ReactorMode};

/// Records the index its factory was given and its loop's id.
struct Where {
    index: usize,
    log: EventLog,
}

impl Handler for Where {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.log
            .push(format!("active {} {}", self.index, ctx.event_loop().id()));
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}
}

#[test]
fn the_factory_is_told_the_io_loop_of_each_connection() {
    for_each_parallel(Config::all(), |config| {
        let log = EventLog::new();
        let server_log = log.clone();
        let server = config
            .server()
            .child_handler_on_loop(move |index| {
                Pipeline::new(
                    RawBytes,
                    Where {
                        index,
                        log: server_log.clone(),
                    },
                )
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let clients: Vec<_> = (0..6).map(|_| connect(server.local_addr())).collect();
        common::wait_until(Duration::from_secs(20), "every connection active", || {
            log.count("active") == clients.len()
        });
        let mut seen = BTreeSet::new();
        for event in log.snapshot() {
            let mut parts = event
                .split(' ')
                .skip(1)
                .map(|n| n.parse::<usize>().unwrap());
            let (index, id) = (parts.next().unwrap(), parts.next().unwrap());
            assert_eq!(index, id, "{config}: the factory's index is the loop's id");
            assert!(
                index < config.mode.io_loops(),
                "{config}: {index} is an I/O loop"
            );
            seen.insert(index);
        }
        if let ReactorMode::MultiReactor { sub_reactors, .. } = config.mode {
            assert_eq!(
                seen.len(),
                sub_reactors,
                "{config}: every sub-reactor got some"
            );
        }
        drop(clients);
        common::wait_for_no_connections(&server);
    });
}
