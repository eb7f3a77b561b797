//! Writing to a peer that has gone never raises `SIGPIPE` (issue 8 §2,
//! point 11b): every way the channel writes to a socket must pass
//! `MSG_NOSIGNAL` (or otherwise keep the signal away), so a write to a
//! reset connection fails with `EPIPE` on that channel only. A program that
//! restored `SIGPIPE`'s default action (or a library that embeds wharf in
//! a process that never ignored it: Rust's runtime ignores it only in Rust
//! binaries) would otherwise be killed.
//!
//! Each case runs in a child process (this binary again) with `SIGPIPE`
//! set back to `SIG_DFL`: a single-reactor server that allows half-closure
//! writes, every 5 ms, to a client that has closed its socket; the client's
//! kernel answers the first write with a reset, so a later write hits a
//! socket in error. The child must live to report the channel's error and
//! exit normally. Cases: plain buffers (`writev`), file regions sent with
//! each transfer strategy (`sendfile`, `splice`, `mmap` + `write`,
//! `pread` + `write`), and a buffer followed by a small region (the
//! `sendmsg(MSG_MORE)` path); edge- and level-triggered.

mod common;

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded, unbounded};
use wharf::buf::ByteBuf;
use wharf::{
    ChannelError, Context, FileRegion, Handler, OutboundMessage, Pipeline, RawMessages,
    ReactorMode, ServerBootstrap, TransferStrategy, Trigger, UserEvent,
};

/// Set in a child process: `{path}:{trigger}`.
const CHILD: &str = "WHARF_TEST_SIGPIPE_CHILD";
const TEST_NAME: &str = "writing_to_a_reset_peer_never_raises_sigpipe";

/// How the server writes.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// Plain buffers: a gathering `writev`.
    Buffers,
    /// A file region with this strategy.
    Region(TransferStrategy),
    /// A buffer followed by a small file region: the buffer goes with
    /// `sendmsg(MSG_MORE)`, the region by the default strategy.
    HeadAndRegion,
}

const PATHS: [(&str, Path); 6] = [
    ("buffers", Path::Buffers),
    ("sendfile", Path::Region(TransferStrategy::Sendfile)),
    ("splice", Path::Region(TransferStrategy::Splice)),
    ("mmap", Path::Region(TransferStrategy::MmapWrite)),
    ("copy", Path::Region(TransferStrategy::ReadWrite)),
    ("head+region", Path::HeadAndRegion),
];

const PIECE: usize = 1024;

/// Keeps writing a piece every 5 ms once the peer has closed its output,
/// until the channel fails; reports how it ended.
struct KeepsWriting {
    path: Path,
    file: Arc<File>,
    writes: u32,
    report: Sender<String>,
}

impl KeepsWriting {
    fn write(&mut self, ctx: &mut Context<'_, OutboundMessage>) {
        let region = || FileRegion::new(Arc::clone(&self.file), 0, PIECE as u64);
        match self.path {
            Path::Buffers => ctx.write(common::buf_of(ctx.allocator(), &[b'x'; PIECE]).into()),
            Path::Region(strategy) => ctx.write(region().with_strategy(strategy).into()),
            Path::HeadAndRegion => {
                ctx.write(common::buf_of(ctx.allocator(), b"head").into());
                ctx.write(region().into());
            }
        }
        ctx.flush();
        self.writes += 1;
        if self.writes < 400 {
            ctx.schedule(Duration::from_millis(5), 0);
        }
    }
}

impl Handler for KeepsWriting {
    type In = ByteBuf;
    type Out = OutboundMessage;

    fn on_read(&mut self, _ctx: &mut Context<'_, OutboundMessage>, _msg: ByteBuf) {}

    fn on_input_shutdown(&mut self, ctx: &mut Context<'_, OutboundMessage>) {
        self.write(ctx);
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, OutboundMessage>, event: UserEvent) {
        if let UserEvent::Timer(_) = event {
            self.write(ctx);
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_, OutboundMessage>, error: &ChannelError) {
        let _ = self.report.send(format!(
            "the channel failed after {} writes: {error}",
            self.writes
        ));
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, OutboundMessage>) {
        let _ = self
            .report
            .send(format!("the channel closed after {} writes", self.writes));
    }
}

/// The child's side: `SIGPIPE` back to its default, then a server writing
/// to a client that has closed.
fn child(spec: &str) {
    let (path, trigger) = spec.split_once(':').expect("path:trigger");
    let how = PATHS
        .iter()
        .find(|(name, _)| *name == path)
        .expect("a known path")
        .1;
    let trigger: Trigger = trigger.parse().expect("a trigger");
    // SAFETY: signal(2) with a valid signal number and SIG_DFL, before any
    // thread of this process could depend on the old disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file_path = dir.join(format!("sigpipe-{}", std::process::id()));
    std::fs::write(&file_path, vec![b'f'; PIECE]).expect("write the file");
    let file = Arc::new(File::open(&file_path).expect("open the file"));
    let _ = std::fs::remove_file(&file_path);
    let (report, reports) = unbounded();
    let server = ServerBootstrap::new()
        .mode(ReactorMode::Single)
        .trigger(trigger)
        .allow_half_closure(true)
        .child_handler(move || {
            Pipeline::new(
                RawMessages,
                KeepsWriting {
                    path: how,
                    file: Arc::clone(&file),
                    writes: 0,
                    report: report.clone(),
                },
            )
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    let client = std::net::TcpStream::connect(server.local_addr()).expect("connect");
    // Closed with nothing unread: a FIN; the server's data then draws a reset.
    drop(client);
    let outcome = reports
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| "no outcome within 5 s".to_string());
    println!("sigpipe-child: {path}/{trigger:?}: {outcome}");
}

#[test]
fn writing_to_a_reset_peer_never_raises_sigpipe() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let mut children = Vec::new();
    for (path, _) in PATHS {
        for trigger in [Trigger::Edge, Trigger::Level] {
            let child = Command::new(std::env::current_exe().expect("this test's executable"))
                .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
                .env(CHILD, format!("{path}:{}", trigger.name()))
                .env("RUST_BACKTRACE", "0")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a child process");
            children.push((format!("{path}/{}", trigger.name()), child));
        }
    }
    let mut killed = Vec::new();
    let mut other = Vec::new();
    let mut survived = Vec::new();
    for (case, child) in children {
        let pid = child.id();
        let (done, finished) = bounded(1);
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        match finished.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(output)) => {
                let stdout = String::from_utf8_lossy(&output.stdout);
                let report = stdout
                    .lines()
                    .find_map(|l| l.split_once("sigpipe-child: ").map(|(_, r)| r.to_string()))
                    .unwrap_or_default();
                if output.status.signal() == Some(libc::SIGPIPE) {
                    killed.push(case);
                } else if output.status.success() {
                    survived.push(report);
                } else {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    other.push(format!("{case}: {} ({report}; {stderr})", output.status));
                }
            }
            Ok(Err(e)) => other.push(format!("{case}: waiting for the child: {e}")),
            Err(_) => {
                // SAFETY: kill(2) on our own child, not reaped yet (its
                // waiter thread still holds it).
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                other.push(format!("{case}: did not finish within 20 s"));
            }
        }
    }
    assert!(
        killed.is_empty() && other.is_empty(),
        "killed by SIGPIPE: [{}]; other failures: [{}]; survived: [{}]",
        killed.join(", "),
        other.join("; "),
        survived.join("; ")
    );
}
