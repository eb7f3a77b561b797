//! Graceful shutdown with idle clients (issue 8 §2, point 7), in every
//! mode × trigger × allocator, side by side.
//!
//! * A pending user timer is not activity: a handler that scheduled a 60 s
//!   timer on an idle connection must not hold the quiet period open until
//!   the hard timeout; `shutdown_gracefully(300 ms, 10 s)` returns within
//!   the quiet period plus 0.5 s.
//! * New API: when a graceful shutdown starts, every open channel's handler
//!   gets `UserEvent::Shutdown`. A handler that closes on it has its idle
//!   connection closed at once (the client sees the end of the stream well
//!   before the quiet period ends), while a client downloading a large
//!   response at that moment still receives all of it.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Config, EventLog, buf_of, pattern, read_until_closed};
use crossbeam_channel::bounded;
use wharf::buf::ByteBuf;
use wharf::{Context, Handler, Pipeline};

/// Schedules a timer far in the future and otherwise does nothing.
struct WithTimer {
    log: EventLog,
}

impl Handler for WithTimer {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.schedule(Duration::from_secs(60), 1);
        self.log.push("active");
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}
}

#[test]
fn a_pending_user_timer_does_not_hold_up_the_quiet_period() {
    const QUIET: Duration = Duration::from_millis(300);
    // One configuration at a time: the bound below is about this server's
    // shutdown, not about twenty servers sharing two cores.
    common::for_each(Config::all(), |config| {
        let log = EventLog::new();
        let l = log.clone();
        let mut server = config
            .server()
            .child_handler(move || Pipeline::bytes(WithTimer { log: l.clone() }))
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut idle = common::connect(server.local_addr());
        log.wait_for(Duration::from_secs(5), "active");
        let (done, returned) = bounded(1);
        // Its own thread: the watchdog below must not wait for the 10 s.
        std::thread::spawn(move || {
            let started = Instant::now();
            let result = server.shutdown_gracefully(QUIET, Duration::from_secs(10));
            let _ = done.send((result, started.elapsed()));
        });
        let (result, took) = returned
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_else(|_| {
                panic!(
                    "{config}: shutdown_gracefully({QUIET:?}, 10 s) with one idle connection \
                     (and its pending 60 s timer) has not returned after 2 s"
                )
            });
        assert!(result.is_ok(), "{config}: shutdown_gracefully: {result:?}");
        assert!(
            took <= QUIET + Duration::from_millis(500),
            "{config}: shutdown_gracefully({QUIET:?}, 10 s) took {took:?}"
        );
        let (data, end) = read_until_closed(&mut idle);
        assert!(
            data.is_empty() && end.is_ok(),
            "{config}: the idle client read {} bytes then {end:?}",
            data.len()
        );
    });
}

/// What the download test's clients do and check, with either handler.
mod download {
    use super::*;

    pub const DOWNLOAD: usize = 8 << 20;
    pub const QUIET: Duration = Duration::from_secs(2);
    /// The idle connection must be closed well before the quiet period ends.
    pub const PROMPTLY: Duration = Duration::from_secs(1);

    /// Sends the whole download at once on any request.
    pub fn answer(ctx: &mut Context<'_, ByteBuf>, data: &[u8]) {
        ctx.write(buf_of(ctx.allocator(), data));
        ctx.flush();
    }

    /// A download in progress and an idle connection when the shutdown
    /// starts: the idle one must end promptly, the download complete.
    pub fn run(config: Config, server: wharf::Server, log: &EventLog) {
        let mut server = server;
        let mut downloader = common::connect(server.local_addr());
        downloader
            .write_all(b"GET\r\n")
            .expect("request the download");
        let mut first = vec![0u8; 64 << 10];
        downloader
            .read_exact(&mut first)
            .expect("the start of the download");
        let mut idle = common::connect(server.local_addr());
        idle.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        common::wait_until(Duration::from_secs(5), "both connections", || {
            log.count("active") == 2
        });
        let (done, returned) = bounded(1);
        let started = Instant::now();
        std::thread::spawn(move || {
            let result = server.shutdown_gracefully(QUIET, Duration::from_secs(10));
            let _ = done.send((result, started.elapsed()));
        });
        let (data, end) = read_until_closed(&mut idle);
        let idle_closed = started.elapsed();
        assert!(
            data.is_empty() && end.is_ok() && idle_closed < PROMPTLY,
            "{config}: the idle connection ended {idle_closed:?} after the shutdown started \
             (quiet period {QUIET:?}), with {} bytes and {end:?}; the handler saw {:?}",
            data.len(),
            log.snapshot()
        );
        let (rest, end) = read_until_closed(&mut downloader);
        first.extend_from_slice(&rest);
        assert!(
            first.len() == DOWNLOAD && first == pattern(9, DOWNLOAD) && end.is_ok(),
            "{config}: the download got {} of {DOWNLOAD} bytes then {end:?}",
            first.len()
        );
        let (result, took) = returned
            .recv_timeout(Duration::from_secs(10))
            .expect("the shutdown returned");
        assert!(
            result.is_ok(),
            "{config}: shutdown_gracefully: {result:?} after {took:?}"
        );
    }
}

/// The handlers that hear of the shutdown (new API).
mod new_api {
    use super::download::{DOWNLOAD, answer, run};
    use super::*;
    use wharf::UserEvent;

    /// Answers any request with the download; closes when the server
    /// starts shutting down.
    struct ClosesOnShutdown {
        data: Arc<Vec<u8>>,
        log: EventLog,
    }

    impl Handler for ClosesOnShutdown {
        type In = ByteBuf;
        type Out = ByteBuf;

        fn on_active(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
            self.log.push("active");
        }

        fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {
            answer(ctx, &self.data);
        }

        fn on_user_event(&mut self, ctx: &mut Context<'_, ByteBuf>, event: UserEvent) {
            if let UserEvent::Shutdown = event {
                self.log.push("shutdown");
                ctx.close();
            }
        }
    }

    #[test]
    fn the_shutdown_event_closes_idle_connections_at_once_and_spares_downloads() {
        let data = Arc::new(pattern(9, DOWNLOAD));
        common::concurrent::for_each_concurrently(Config::all(), |config| {
            let log = EventLog::new();
            let (l, d) = (log.clone(), Arc::clone(&data));
            let server = config
                .server()
                .child_handler(move || {
                    Pipeline::bytes(ClosesOnShutdown {
                        data: Arc::clone(&d),
                        log: l.clone(),
                    })
                })
                .bind("127.0.0.1:0")
                .expect("bind");
            run(config, server, &log);
        });
    }
}
