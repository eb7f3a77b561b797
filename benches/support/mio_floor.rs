//! The floor: a hand-written single-thread `mio` echo loop, the least a
//! framework could spend on the same work (issue 12). One thread, edge-
//! triggered, one 64 KiB buffer per connection, read until `WouldBlock`,
//! each read written back at once; what a full socket does not take waits
//! in the connection's buffer (and reading stops) until it is writable.
//! No pipeline, no pool, no timers, no metrics: what wharf adds on top of
//! this is its cost.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::servers::{THREADS, Workload, work};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const BUFFER: usize = 64 << 10;

/// One connection: its socket and the bytes it still has to send back.
struct Conn {
    socket: TcpStream,
    buf: Box<[u8]>,
    /// `buf[sent..filled]` waits for the socket to take it.
    sent: usize,
    filled: usize,
}

/// The running floor server.
pub struct MioFloor {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl MioFloor {
    /// Starts the loop on a free loopback port.
    pub fn start(workload: Workload) -> MioFloor {
        let poll = Poll::new().expect("poll");
        let mut listener =
            TcpListener::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let addr = listener.local_addr().expect("address");
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .expect("register");
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).expect("waker"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("{THREADS}-floor"))
            .spawn(move || run(poll, listener, &flag, workload))
            .expect("spawn");
        MioFloor {
            addr,
            stop,
            waker,
            thread: Some(thread),
        }
    }
}

impl Drop for MioFloor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut poll: Poll, listener: TcpListener, stop: &AtomicBool, workload: Workload) {
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    while !stop.load(Ordering::Acquire) {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(100))) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => accept(&poll, &listener, &mut conns),
                WAKER => {}
                Token(key) => {
                    let Some(conn) = conns.get_mut(key) else {
                        continue;
                    };
                    if serve(conn, workload).is_err() {
                        let mut conn = conns.remove(key);
                        let _ = poll.registry().deregister(&mut conn.socket);
                    }
                }
            }
        }
    }
}

fn accept(poll: &Poll, listener: &TcpListener, conns: &mut Slab<Conn>) {
    while let Ok((mut socket, _)) = listener.accept() {
        let _ = socket.set_nodelay(true);
        let entry = conns.vacant_entry();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if poll
            .registry()
            .register(&mut socket, Token(entry.key()), interest)
            .is_ok()
        {
            entry.insert(Conn {
                socket,
                buf: vec![0; BUFFER].into_boxed_slice(),
                sent: 0,
                filled: 0,
            });
        }
    }
}

/// Sends what waits, then reads and echoes until the socket has nothing
/// more (or will not take more); `Err` closes the connection.
fn serve(conn: &mut Conn, workload: Workload) -> io::Result<()> {
    loop {
        while conn.sent < conn.filled {
            match conn.socket.write(&conn.buf[conn.sent..conn.filled]) {
                Ok(n) => conn.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        match conn.socket.read(&mut conn.buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                if let Workload::Hash { rounds } = workload {
                    work(&conn.buf[..n], rounds);
                }
                conn.sent = 0;
                conn.filled = n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
