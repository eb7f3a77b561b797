//! Running out of descriptors (`EMFILE` on accept) in the single-reactor
//! mode, edge- and level-triggered: the connections already open are still
//! served, the loop does not spin on the connection waiting in the backlog
//! (little CPU time, few polls), and once descriptors are free again the
//! waiting connection is accepted and served.
//!
//! A test binary of its own: it lowers the process's descriptor limit, and
//! fills the descriptor table up to it.

mod common;

use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use common::{Config, connect, read_exact_n};
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

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

fn echo_round(stream: &mut std::net::TcpStream, msg: &[u8], what: &str) {
    stream
        .write_all(msg)
        .unwrap_or_else(|e| panic!("{what}: send: {e}"));
    let got = read_exact_n(stream, msg.len());
    assert_eq!(got, msg, "{what}: echo");
}

fn accept_survives_running_out_of_descriptors(trigger: Trigger) {
    let config = Config {
        mode: ReactorMode::Single,
        trigger,
        pooled: true,
    };
    let (soft, _) = limits::fd_limits().expect("the descriptor limits");
    let _restore = RestoreLimit(soft);
    let limit = open_descriptors() as u64 + 64;
    limits::set_fd_soft_limit(limit).expect("lower the descriptor limit");
    let server = config
        .server()
        .accept_backoff(Duration::from_millis(200))
        .child_handler(|| Pipeline::bytes(Echo))
        .bind("127.0.0.1:0")
        .expect("bind");
    let addr = server.local_addr();
    let mut a = connect(addr);
    echo_round(&mut a, b"a before", &format!("{config}: client A"));

    // Take every descriptor left, then give one back: client B's socket
    // gets it, so the server's accept of B finds none.
    let mut dummies = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => dummies.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("{config}: opening /dev/null: {e}"),
        }
        assert!(
            dummies.len() < limit as usize,
            "{config}: the limit is not enforced"
        );
    }
    dummies.pop();
    let accepts_before = server.stats().accepts;
    // The kernel completes the handshake into the backlog.
    let mut b = connect(addr);
    b.write_all(b"b waiting").expect("client B: send");
    assert!(
        File::open("/dev/null").is_err(),
        "{config}: a descriptor is still free; the test's budget is off"
    );

    // While the server cannot accept B: A is served, and the loop is calm.
    let cpu_before = limits::process_cpu_time().expect("CPU time");
    let polls_before = server.stats().polls;
    let window = Instant::now();
    let mut round = 0;
    while window.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(250));
        echo_round(
            &mut a,
            format!("a {round}").as_bytes(),
            &format!("{config}: client A"),
        );
        round += 1;
    }
    let cpu = limits::process_cpu_time().expect("CPU time") - cpu_before;
    let polls = server.stats().polls - polls_before;
    let elapsed = window.elapsed();
    assert_eq!(
        server.connections(),
        1,
        "{config}: B was accepted with no descriptor free"
    );
    assert_eq!(
        server.stats().accepts,
        accepts_before,
        "{config}: accepts while out of descriptors"
    );
    assert!(
        server.stats().accept_backoffs >= 1,
        "{config}: the accept back-off is counted in the metrics"
    );
    eprintln!("{config}: out of descriptors for {elapsed:?}: {cpu:?} of CPU time, {polls} polls");
    assert!(
        cpu < Duration::from_millis(300),
        "{config}: {cpu:?} of CPU time in {elapsed:?} out of descriptors: the loop spins"
    );
    assert!(
        polls < 100,
        "{config}: {polls} polls in {elapsed:?} out of descriptors: the loop spins"
    );

    // Descriptors again: B is accepted and served.
    drop(dummies);
    let freed = Instant::now();
    b.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("read timeout");
    let got = read_exact_n(&mut b, 9);
    assert_eq!(got, b"b waiting", "{config}: client B's echo");
    eprintln!(
        "{config}: B served {:?} after descriptors were freed",
        freed.elapsed()
    );
    echo_round(&mut b, b"b after", &format!("{config}: client B"));
    echo_round(&mut a, b"a after", &format!("{config}: client A"));
    drop((a, b));
    common::wait_for_no_connections(&server);
}

/// One test, both triggers in turn: they share the process's descriptors.
#[test]
fn accept_survives_running_out_of_descriptors_edge_then_level() {
    accept_survives_running_out_of_descriptors(Trigger::Edge);
    accept_survives_running_out_of_descriptors(Trigger::Level);
}
