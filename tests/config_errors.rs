//! Bad configuration is an error, never a spin or a panic (issue 8 §2,
//! point 8).
//!
//! * Settings that cannot work are refused by `bind` and `connect` with an
//!   `InvalidInput` error that names the option: water marks with the low
//!   one above the high one (a thread then spins at 100 %, flipping
//!   writability), a write spin count of 0 (a flush that never writes and
//!   reschedules itself forever), a read budget of 0, receive sizes with
//!   the minimum above the maximum. Set through the builder methods and
//!   through `channel_config`.
//! * Durations of `Duration::MAX` (meaning "never") must not overflow
//!   `Instant + Duration`, which panics and kills the loop thread (or the
//!   caller): a close timeout, idle timeouts, an accept back-off, timers'
//!   periods and delays, a shutdown's quiet period and timeout, a connect
//!   timeout. With each, the server keeps serving (an echo round trip), its
//!   loop threads stay alive, and it shuts down normally.
//!
//! Every mode × trigger × allocator where a loop is involved; the
//! accept back-off case runs in child processes (this binary again), since
//! it needs the descriptor table full.

mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::concurrent::{for_each_concurrently, for_each_reporting_all, panic_message};
use common::{Config, buf_of, pattern, read_until_closed};
use crossbeam_channel::bounded;
use wharf::buf::ByteBuf;
use wharf::transport::handlers::Echo;
use wharf::{
    Bootstrap, ChannelConfig, Context, EventLoopGroup, Handler, IdleConfig, Pipeline, ReactorMode,
    RecvSize, Server, ServerBootstrap, SocketOption, Trigger, WaterMark,
};

// ----- configuration errors --------------------------------------------

/// Checks that `result` is an `InvalidInput` error naming `option`.
fn expect_refused<T>(result: io::Result<T>, option: &str, what: &str) -> Result<(), String> {
    match result {
        Err(e) if e.kind() == ErrorKind::InvalidInput && e.to_string().contains(option) => Ok(()),
        Err(e) => Err(format!(
            "{what}: refused with {:?} {e:?}, not an InvalidInput error naming {option:?}",
            e.kind()
        )),
        Ok(_) => Err(format!(
            "{what}: accepted (an InvalidInput error naming {option:?} expected)"
        )),
    }
}

/// The bad settings, each as a bootstrap change and the option's name.
fn bad_channel_configs() -> Vec<(&'static str, &'static str, ChannelConfig)> {
    vec![
        (
            "water marks low 64 KiB > high 32 KiB",
            "water_mark",
            ChannelConfig {
                water_mark: WaterMark {
                    low: 64 << 10,
                    high: 32 << 10,
                },
                ..ChannelConfig::default()
            },
        ),
        (
            "write_spin_count 0",
            "write_spin_count",
            ChannelConfig {
                write_spin_count: 0,
                ..ChannelConfig::default()
            },
        ),
        (
            "max_messages_per_read 0",
            "max_messages_per_read",
            ChannelConfig {
                max_messages_per_read: 0,
                ..ChannelConfig::default()
            },
        ),
        (
            "recv_size min 4096 > max 1024",
            "recv_size",
            ChannelConfig {
                recv_size: RecvSize {
                    min: 4096,
                    initial: 2048,
                    max: 1024,
                },
                ..ChannelConfig::default()
            },
        ),
    ]
}

#[test]
fn bind_refuses_settings_that_cannot_work() {
    for_each_reporting_all(Config::all(), |config| {
        let mut problems = Vec::new();
        let echo = |b: ServerBootstrap| {
            b.child_handler(|| Pipeline::bytes(Echo))
                .bind("127.0.0.1:0")
        };
        let checks = [expect_refused(
            echo(config.server().water_mark(64 << 10, 32 << 10)),
            "water_mark",
            "water_mark(64 KiB, 32 KiB)",
        )]
        .into_iter()
        .chain(
            bad_channel_configs()
                .into_iter()
                .map(|(what, option, bad)| {
                    let bad = ChannelConfig {
                        allocator: config.allocator(),
                        ..bad
                    };
                    expect_refused(
                        echo(config.server().channel_config(bad)),
                        option,
                        &format!("channel_config with {what}"),
                    )
                }),
        );
        for check in checks {
            if let Err(problem) = check {
                problems.push(problem);
            }
        }
        assert!(problems.is_empty(), "{config}: {}", problems.join("; "));
    });
}

#[test]
fn connect_refuses_settings_that_cannot_work() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a listener");
    let addr = listener.local_addr().expect("address");
    let mut problems = Vec::new();
    for trigger in [Trigger::Edge, Trigger::Level] {
        let group = EventLoopGroup::new(1, trigger).expect("client group");
        let connect = |b: Bootstrap| {
            b.connect_timeout(Duration::from_secs(2))
                .connect(addr, Pipeline::bytes(Echo))
                .map(|handle| handle.close())
        };
        let mut checks = vec![expect_refused(
            connect(Bootstrap::new(&group).water_mark(64 << 10, 32 << 10)),
            "water_mark",
            &format!("{trigger:?}: water_mark(64 KiB, 32 KiB)"),
        )];
        for (what, option, bad) in bad_channel_configs() {
            checks.push(expect_refused(
                connect(Bootstrap::new(&group).channel_config(bad)),
                option,
                &format!("{trigger:?}: channel_config with {what}"),
            ));
        }
        problems.extend(checks.into_iter().filter_map(Result::err));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ----- Duration::MAX ---------------------------------------------------

const BIG: usize = 8 << 20;

/// `PING` → `PONG`; `BIG` → 8 MiB, then close. Schedules a user timer of
/// `timer` when active, if set.
struct Service {
    big: Arc<Vec<u8>>,
    timer: Option<Duration>,
}

impl Handler for Service {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        if let Some(delay) = self.timer {
            ctx.schedule(delay, 7);
        }
    }

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        match &msg[..] {
            b"PING" => ctx.write_and_flush(buf_of(ctx.allocator(), b"PONG")),
            b"BIG" => {
                ctx.write_and_flush(buf_of(ctx.allocator(), &self.big));
                ctx.close();
            }
            _ => {}
        }
    }
}

fn big_data() -> Arc<Vec<u8>> {
    static DATA: std::sync::OnceLock<Arc<Vec<u8>>> = std::sync::OnceLock::new();
    Arc::clone(DATA.get_or_init(|| Arc::new(pattern(13, BIG))))
}

/// A server of `Service` with the settings `configure` adds, and a thread
/// name of its own, so its loops can be counted.
fn service(
    config: Config,
    timer: Option<Duration>,
    configure: impl FnOnce(ServerBootstrap) -> ServerBootstrap,
) -> (Server, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // Thread names are cut to 15 bytes: keep "{prefix}-loop" short.
    let prefix = format!("dm{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let big = big_data();
    let server = configure(config.server().thread_name(prefix.clone()))
        .child_handler(move || {
            Pipeline::bytes(Service {
                big: Arc::clone(&big),
                timer,
            })
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, prefix)
}

/// One `PING` → `PONG` round trip on a new connection.
fn ping(addr: SocketAddr) -> Result<(), String> {
    let mut client = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    client
        .write_all(b"PING")
        .map_err(|e| format!("send PING: {e}"))?;
    let mut answer = [0u8; 4];
    client
        .read_exact(&mut answer)
        .map_err(|e| format!("no PONG: {e}"))?;
    if &answer != b"PONG" {
        return Err(format!("answered {answer:?}"));
    }
    Ok(())
}

/// The server still serves, its loop threads are all alive, and it shuts
/// down normally; appends what is wrong to `problems`.
fn still_healthy(mut server: Server, prefix: &str, problems: &mut Vec<String>) {
    if let Err(e) = ping(server.local_addr()) {
        problems.push(format!("the server stopped serving ({e})"));
    }
    let loops = server.event_loops().len();
    // A loop thread names itself once it first runs, which on a busy
    // machine can be after `bind` returns: wait for it, with a deadline.
    let name = format!("{prefix}-loop");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut alive = common::threads_named(&name);
    while alive != loops && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
        alive = common::threads_named(&name);
    }
    if alive != loops {
        problems.push(format!("{alive} of its {loops} loop threads are alive"));
    }
    let started = Instant::now();
    match catch_unwind(AssertUnwindSafe(|| {
        server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2))
    })) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!(
            "shutdown_gracefully failed after {:?}: {e}",
            started.elapsed()
        )),
        Err(panic) => problems.push(format!(
            "shutdown_gracefully panicked: {}",
            panic_message(&*panic)
        )),
    }
}

/// A client with a small receive buffer (set before connecting), so a
/// large reply stays queued at the server for a while.
fn small_window_client(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("client socket");
    socket.set_recv_buffer_size(16 << 10).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("read timeout");
    stream
}

#[test]
fn a_close_timeout_of_duration_max_means_never() {
    for_each_concurrently(Config::all(), |config| {
        let (server, prefix) = service(config, None, |b| {
            b.close_timeout(Duration::MAX)
                .option(SocketOption::SendBuffer(16 << 10))
        });
        let mut problems = Vec::new();
        // Closes with most of 8 MiB still queued: the close timer is armed.
        let mut client = small_window_client(server.local_addr());
        client.write_all(b"BIG").expect("send BIG");
        let (data, end) = read_until_closed(&mut client);
        if data.len() != BIG || *data != **big_data() || end.is_err() {
            problems.push(format!(
                "a close with 8 MiB queued: the client got {} of {BIG} bytes, then {end:?}",
                data.len()
            ));
        }
        still_healthy(server, &prefix, &mut problems);
        assert!(problems.is_empty(), "{config}: {}", problems.join("; "));
    });
}

#[test]
fn idle_timeouts_of_duration_max_mean_never() {
    let kinds: [(&str, IdleConfig); 3] = [
        (
            "reader",
            IdleConfig {
                reader: Some(Duration::MAX),
                ..IdleConfig::default()
            },
        ),
        (
            "writer",
            IdleConfig {
                writer: Some(Duration::MAX),
                ..IdleConfig::default()
            },
        ),
        (
            "all",
            IdleConfig {
                all: Some(Duration::MAX),
                ..IdleConfig::default()
            },
        ),
    ];
    for_each_concurrently(Config::all(), |config| {
        let mut problems = Vec::new();
        for (kind, idle) in kinds {
            let (server, prefix) = service(config, None, |b| b.idle(idle));
            let mut found = Vec::new();
            still_healthy(server, &prefix, &mut found);
            problems.extend(found.into_iter().map(|p| format!("{kind} idle MAX: {p}")));
        }
        assert!(problems.is_empty(), "{config}: {}", problems.join("; "));
    });
}

#[test]
fn timers_of_duration_max_mean_never() {
    for_each_concurrently(Config::all(), |config| {
        let mut problems = Vec::new();
        // A handler's own timer of Duration::MAX on every connection.
        let (server, prefix) = service(config, Some(Duration::MAX), |b| b);
        let mut found = Vec::new();
        still_healthy(server, &prefix, &mut found);
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("ctx.schedule(MAX) in on_active: {p}")),
        );

        let (server, prefix) = service(config, None, |b| b);
        let loops = server.event_loops();
        // A fixed-rate timer with a period of Duration::MAX fires once...
        let fired = Arc::new(AtomicUsize::new(0));
        for event_loop in &loops {
            let fired = Arc::clone(&fired);
            event_loop
                .schedule_at_fixed_rate(Duration::ZERO, Duration::MAX, move || {
                    fired.fetch_add(1, Ordering::Relaxed);
                })
                .expect("a period above zero");
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while fired.load(Ordering::Relaxed) < loops.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if fired.load(Ordering::Relaxed) < loops.len() {
            problems.push(format!(
                "schedule_at_fixed_rate(0, MAX) ran on {} of {} loops within 2 s",
                fired.load(Ordering::Relaxed),
                loops.len()
            ));
        }
        // ...and delays of Duration::MAX never fire, without panicking the
        // caller.
        let event_loop = &loops[0];
        for (what, schedule) in [
            (
                "schedule_at_fixed_rate(MAX, 1 s)",
                Box::new(|| {
                    event_loop
                        .schedule_at_fixed_rate(Duration::MAX, Duration::from_secs(1), || {})
                        .expect("a period above zero");
                }) as Box<dyn Fn()>,
            ),
            (
                "schedule(MAX)",
                Box::new(|| {
                    event_loop.schedule(Duration::MAX, || {});
                }),
            ),
        ] {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(schedule)) {
                problems.push(format!(
                    "{what} panicked on the calling thread: {}",
                    panic_message(&*panic)
                ));
            }
        }
        still_healthy(server, &prefix, &mut problems);
        assert!(problems.is_empty(), "{config}: {}", problems.join("; "));
    });
}

#[test]
fn a_shutdown_with_durations_of_max_still_ends() {
    for_each_concurrently(Config::all(), |config| {
        let mut problems = Vec::new();
        // A quiet period of Duration::MAX: the idle connection is closed at
        // the timeout.
        let (mut server, _) = service(config, None, |b| b);
        let mut idle = common::connect(server.local_addr());
        if let Err(e) = ping(server.local_addr()) {
            problems.push(format!("before the shutdown: {e}"));
        }
        idle.write_all(b"PING").expect("send PING");
        let mut answer = [0u8; 4];
        idle.read_exact(&mut answer).expect("PONG");
        let (done, returned) = bounded(1);
        std::thread::spawn(move || {
            let started = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                server.shutdown_gracefully(Duration::MAX, Duration::from_secs(1))
            }))
            .map_err(|panic| panic_message(&*panic));
            let _ = done.send((outcome, started.elapsed()));
        });
        match returned.recv_timeout(Duration::from_secs(5)) {
            Ok((Ok(Ok(())), took)) if took < Duration::from_secs(3) => {}
            Ok((Ok(Ok(())), took)) => problems.push(format!(
                "shutdown_gracefully(MAX, 1 s) with an idle connection took {took:?}"
            )),
            Ok((Ok(Err(e)), took)) => problems.push(format!(
                "shutdown_gracefully(MAX, 1 s) with an idle connection failed after {took:?}: \
                 {e}"
            )),
            Ok((Err(panic), _)) => problems.push(format!(
                "shutdown_gracefully(MAX, 1 s) with an idle connection panicked: {panic}"
            )),
            Err(_) => problems.push(
                "shutdown_gracefully(MAX, 1 s) with an idle connection has not returned after \
                 5 s"
                .to_string(),
            ),
        }

        // A timeout of Duration::MAX: the idle connection closes at once.
        let (mut server, _) = service(config, None, |b| b);
        let idle = common::connect(server.local_addr());
        let (done, returned) = bounded(1);
        std::thread::spawn(move || {
            let started = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                server.shutdown_gracefully(Duration::ZERO, Duration::MAX)
            }));
            let outcome = match outcome {
                Ok(result) => Ok(result),
                Err(panic) => {
                    // Its loops never heard of the shutdown: leave them be.
                    std::mem::forget(server);
                    Err(panic_message(&*panic))
                }
            };
            let _ = done.send((outcome, started.elapsed()));
        });
        match returned.recv_timeout(Duration::from_secs(5)) {
            Ok((Ok(Ok(())), _)) => {}
            Ok((Ok(Err(e)), took)) => problems.push(format!(
                "shutdown_gracefully(0, MAX) failed after {took:?}: {e}"
            )),
            Ok((Err(panic), _)) => {
                problems.push(format!("shutdown_gracefully(0, MAX) panicked: {panic}"))
            }
            Err(_) => problems.push(
                "shutdown_gracefully(0, MAX) with an idle connection has not returned after 5 s"
                    .to_string(),
            ),
        }
        drop(idle);
        assert!(problems.is_empty(), "{config}: {}", problems.join("; "));
    });
}

#[test]
fn a_connect_timeout_of_duration_max_means_never() {
    let (server, _) = service(
        Config {
            mode: ReactorMode::Single,
            trigger: Trigger::Edge,
            pooled: true,
        },
        None,
        |b| b,
    );
    let mut problems = Vec::new();
    for trigger in [Trigger::Edge, Trigger::Level] {
        let group = EventLoopGroup::new(1, trigger).expect("client group");
        match Bootstrap::new(&group)
            .connect_timeout(Duration::MAX)
            .connect(server.local_addr(), Pipeline::bytes(Echo))
        {
            Ok(handle) => handle.close(),
            Err(e) => problems.push(format!(
                "{trigger:?}: connect with connect_timeout(MAX) to a listening server: {e}"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ----- accept back-off, in a child process -------------------------------

/// Set in a child process: the trigger to test.
const BACKOFF_CHILD: &str = "WHARF_TEST_ACCEPT_BACKOFF_CHILD";

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// The child's side: a single-reactor server with an accept back-off of
/// `Duration::MAX` runs out of descriptors on accept; the connection it
/// already has must still be served, its loop must stay alive, and it must
/// shut down normally.
fn accept_backoff_child(trigger: Trigger) {
    use wharf::transport::sys::limits;
    let config = Config {
        mode: ReactorMode::Single,
        trigger,
        pooled: true,
    };
    let (server, prefix) = service(config, None, |b| b.accept_backoff(Duration::MAX));
    let addr = server.local_addr();
    let mut a = common::connect(addr);
    let echo = |a: &mut TcpStream, what: &str| -> Result<(), String> {
        a.set_read_timeout(Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
        a.write_all(b"PING")
            .map_err(|e| format!("{what}: send: {e}"))?;
        let mut answer = [0u8; 4];
        a.read_exact(&mut answer)
            .map_err(|e| format!("{what}: no PONG: {e}"))
    };
    echo(&mut a, "before").expect("a round trip before running out of descriptors");

    // Every descriptor taken but one, which client B's socket gets: the
    // server's accept of B fails with EMFILE and backs off.
    let (soft, _) = limits::fd_limits().expect("the descriptor limits");
    limits::set_fd_soft_limit(open_descriptors() as u64 + 32).expect("lower the limit");
    let mut dummies = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        dummies.push(f);
    }
    dummies.pop();
    let b = TcpStream::connect(addr).expect("client B");
    let mut problems = Vec::new();
    let window = Instant::now();
    while window.elapsed() < Duration::from_millis(500) {
        if let Err(e) = echo(&mut a, "while out of descriptors") {
            problems.push(e);
            break;
        }
    }
    drop(dummies);
    let _ = limits::set_fd_soft_limit(soft);
    drop(b);
    let mut found = Vec::new();
    still_healthy(server, &prefix, &mut found);
    // Accepting stays paused (for ever), so only the loop's health counts.
    problems.extend(
        found
            .into_iter()
            .filter(|p| !p.starts_with("the server stopped serving")),
    );
    if problems.is_empty() {
        println!("accept-backoff-child: ok");
    } else {
        panic!("{trigger:?}: {}", problems.join("; "));
    }
}

#[test]
fn an_accept_backoff_of_duration_max_means_never() {
    if let Ok(trigger) = std::env::var(BACKOFF_CHILD) {
        accept_backoff_child(trigger.parse().expect("a trigger"));
        return;
    }
    let children: Vec<_> = [Trigger::Edge, Trigger::Level]
        .into_iter()
        .map(|trigger| {
            let child = std::process::Command::new(
                std::env::current_exe().expect("this test's executable"),
            )
            .args([
                "--exact",
                "an_accept_backoff_of_duration_max_means_never",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(BACKOFF_CHILD, trigger.name())
            .env("RUST_BACKTRACE", "0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the child process");
            (trigger, child)
        })
        .collect();
    let mut problems = Vec::new();
    for (trigger, child) in children {
        let (done, finished) = bounded(1);
        let pid = child.id();
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        match finished.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(output)) if output.status.success() => {}
            Ok(Ok(output)) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let essential: Vec<&str> = stderr
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .filter(|l| {
                        !["note:", "test ", "running ", "failures", "----"]
                            .iter()
                            .any(|p| l.starts_with(p))
                    })
                    .collect();
                problems.push(format!(
                    "{trigger:?}: the child exited with {}: {}",
                    output.status,
                    essential.join(" | ")
                ));
            }
            Ok(Err(e)) => problems.push(format!("{trigger:?}: waiting for the child: {e}")),
            Err(_) => {
                // SAFETY: kill(2) on the pid of our own child, which has not
                // been reaped (its waiter still holds it).
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                problems.push(format!("{trigger:?}: the child did not finish within 30 s"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
