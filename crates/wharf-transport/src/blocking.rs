//! A small pool of threads for blocking file reads, so that an event loop
//! never waits on a disk (nginx's `aio threads`). Started on first use; its
//! threads live as long as the process.

use std::sync::OnceLock;

use crossbeam_channel::{Sender, unbounded};

type Job = Box<dyn FnOnce() + Send>;

/// Threads in the pool: reads of large files are few and long.
const THREADS: usize = 2;

fn pool() -> &'static Sender<Job> {
    static POOL: OnceLock<Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = unbounded::<Job>();
        for i in 0..THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("wharf-blocking-{i}"))
                .spawn(move || {
                    for job in rx {
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                            log::error!("a blocking I/O job panicked");
                        }
                    }
                });
            if let Err(e) = spawned {
                log::error!("starting a blocking I/O thread: {e}");
            }
        }
        tx
    })
}

/// Runs `job` on the pool.
pub(crate) fn spawn(job: impl FnOnce() + Send + 'static) {
    // The pool's threads never stop, so the channel never closes.
    let _ = pool().send(Box::new(job));
}
