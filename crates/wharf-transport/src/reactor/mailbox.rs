//! How other threads hand work to an event loop without a lost wake-up and
//! without a wake-up per task.
//!
//! A [`Mailbox`] is a multi-producer queue plus the loop's waker and one
//! flag, `notified`, that says "a wake-up is on its way, or the loop is
//! awake anyway". Posting pushes the task, then swaps the flag to `true`;
//! only the poster that found it `false` wakes the loop (one `eventfd`
//! write per sleep, however many tasks arrive). The loop, before it blocks,
//! swaps the flag back to `false` and then looks at the queue: a task
//! pushed before that swap is seen by the look, a task pushed after it
//! finds the flag `false` and wakes the loop. Both sides use read-modify-
//! write operations on the flag, so the argument holds in the memory model
//! and not only on x86 (the loom model in `tests` checks it).
//!
//! When the loop ends it closes the mailbox ([`Inbox`] dropped): later
//! posts fail and return the task's fate to the poster, and tasks still
//! queued are dropped (their destructors run, so counts they carry are
//! released).

use std::fmt;
use std::io;

use crate::sync::{AtomicBool, Ordering};

/// Wakes a loop blocked in its poll.
pub(crate) trait Wake: Send + Sync {
    /// Makes the loop's next (or current) poll return.
    fn wake(&self) -> io::Result<()>;
}

impl Wake for mio::Waker {
    fn wake(&self) -> io::Result<()> {
        mio::Waker::wake(self)
    }
}

/// The posting side, shared by every handle to the loop.
pub(crate) struct Mailbox<T, W> {
    tx: queue::Sender<T>,
    waker: W,
    notified: AtomicBool,
}

/// The loop's side: takes the tasks.
pub(crate) struct Inbox<T> {
    rx: queue::Receiver<T>,
}

impl<T, W> fmt::Debug for Mailbox<T, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("notified", &self.notified.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

/// A new mailbox for one loop, woken through `waker`.
pub(crate) fn mailbox<T, W: Wake>(waker: W) -> (Mailbox<T, W>, Inbox<T>) {
    let (tx, rx) = queue::unbounded();
    let mailbox = Mailbox {
        tx,
        waker,
        // The loop starts awake: it looks at its queue before blocking.
        notified: AtomicBool::new(true),
    };
    (mailbox, Inbox { rx })
}

impl<T, W: Wake> Mailbox<T, W> {
    /// Queues `task` and wakes the loop if it may be asleep. Gives the
    /// task back if the loop has ended.
    pub(crate) fn post(&self, task: T) -> Result<(), T> {
        self.tx.send(task)?;
        if !self.notified.swap(true, Ordering::SeqCst) {
            // A failed wake means the poller is gone: the loop is ending
            // and drops what is queued.
            let _ = self.waker.wake();
        }
        Ok(())
    }

    /// Called by the loop before it blocks: posts from now on wake it.
    /// Returns whether tasks are already waiting (then it must not block).
    pub(crate) fn arm(&self, inbox: &Inbox<T>) -> bool {
        self.notified.swap(false, Ordering::SeqCst);
        !inbox.rx.is_empty()
    }

    /// Called by the loop once it is awake: posts need not wake it.
    pub(crate) fn disarm(&self) {
        self.notified.store(true, Ordering::SeqCst);
    }
}

impl<T> Inbox<T> {
    /// The next queued task, if any.
    pub(crate) fn try_take(&self) -> Option<T> {
        self.rx.try_recv()
    }
}

/// The queue: crossbeam's channel, or under loom a mutex-guarded deque with
/// the same semantics (a send fails once the receiver is gone, and what is
/// queued then is dropped).
#[cfg(not(loom))]
mod queue {
    pub(crate) struct Sender<T>(crossbeam_channel::Sender<T>);
    pub(crate) struct Receiver<T>(crossbeam_channel::Receiver<T>);

    pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Sender(tx), Receiver(rx))
    }

    impl<T> Sender<T> {
        pub(crate) fn send(&self, value: T) -> Result<(), T> {
            self.0.send(value).map_err(|e| e.into_inner())
        }
    }

    impl<T> Receiver<T> {
        pub(crate) fn try_recv(&self) -> Option<T> {
            self.0.try_recv().ok()
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
}

#[cfg(loom)]
mod queue {
    use std::collections::VecDeque;

    use loom::sync::{Arc, Mutex};

    struct Shared<T> {
        items: VecDeque<T>,
        closed: bool,
    }

    pub(crate) struct Sender<T>(Arc<Mutex<Shared<T>>>);
    pub(crate) struct Receiver<T>(Arc<Mutex<Shared<T>>>);

    pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Mutex::new(Shared {
            items: VecDeque::new(),
            closed: false,
        }));
        (Sender(shared.clone()), Receiver(shared))
    }

    impl<T> Sender<T> {
        pub(crate) fn send(&self, value: T) -> Result<(), T> {
            let mut shared = self.0.lock().unwrap();
            if shared.closed {
                return Err(value);
            }
            shared.items.push_back(value);
            Ok(())
        }
    }

    impl<T> Receiver<T> {
        pub(crate) fn try_recv(&self) -> Option<T> {
            self.0.lock().unwrap().items.pop_front()
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().unwrap().items.is_empty()
        }
    }

    impl<T> Drop for Receiver<T> {
        fn drop(&mut self) {
            let dropped = {
                let mut shared = self.0.lock().unwrap();
                shared.closed = true;
                std::mem::take(&mut shared.items)
            };
            drop(dropped);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model checks of the wake-up protocol: every interleaving of a loop
    //! going to sleep with tasks being posted from other threads.

    use loom::sync::atomic::AtomicUsize;
    use loom::sync::{Arc, Condvar, Mutex};

    use super::*;

    /// Every interleaving with up to three preemptions (loom's advice: most
    /// bugs need no more), so the models finish in seconds.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// A waker the model can block on: a flag under a mutex.
    #[derive(Default)]
    struct Bell {
        rung: Mutex<bool>,
        cv: Condvar,
    }

    impl Wake for Arc<Bell> {
        fn wake(&self) -> io::Result<()> {
            *self.rung.lock().unwrap() = true;
            self.cv.notify_one();
            Ok(())
        }
    }

    impl Bell {
        /// Blocks until rung (the loop's `epoll_wait`), then resets.
        fn wait(&self) {
            let mut rung = self.rung.lock().unwrap();
            while !*rung {
                rung = self.cv.wait(rung).unwrap();
            }
            *rung = false;
        }
    }

    /// The loop's iteration: arm, block unless work is waiting, disarm,
    /// take what is queued. Returns how many tasks it took.
    fn iterate(mailbox: &Mailbox<usize, Arc<Bell>>, inbox: &Inbox<usize>, bell: &Bell) -> usize {
        if !mailbox.arm(inbox) {
            bell.wait();
        }
        mailbox.disarm();
        let mut taken = 0;
        while inbox.try_take().is_some() {
            taken += 1;
        }
        taken
    }

    #[test]
    fn a_task_posted_while_the_loop_goes_to_sleep_always_wakes_it() {
        model(|| {
            let bell = Arc::new(Bell::default());
            let (mailbox, inbox) = mailbox::<usize, _>(bell.clone());
            let mailbox = Arc::new(mailbox);
            let poster = {
                let mailbox = mailbox.clone();
                loom::thread::spawn(move || {
                    mailbox.post(1).ok().expect("the loop is alive");
                })
            };
            // The loop keeps iterating until it has seen the task; a lost
            // wake-up leaves it blocked forever, which loom reports.
            let mut seen = 0;
            while seen == 0 {
                seen += iterate(&mailbox, &inbox, &bell);
            }
            poster.join().unwrap();
        });
    }

    #[test]
    fn two_posters_each_get_their_task_through() {
        model(|| {
            let bell = Arc::new(Bell::default());
            let (mailbox, inbox) = mailbox::<usize, _>(bell.clone());
            let mailbox = Arc::new(mailbox);
            let posted = Arc::new(AtomicUsize::new(0));
            let posters: Vec<_> = (0..2)
                .map(|i| {
                    let mailbox = mailbox.clone();
                    let posted = posted.clone();
                    loom::thread::spawn(move || {
                        mailbox.post(i).ok().expect("the loop is alive");
                        posted.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            let mut seen = 0;
            while seen < 2 {
                seen += iterate(&mailbox, &inbox, &bell);
            }
            for p in posters {
                p.join().unwrap();
            }
            assert_eq!(posted.load(Ordering::SeqCst), 2);
        });
    }

    #[test]
    fn a_post_after_the_loop_ended_fails_and_queued_tasks_are_dropped() {
        model(|| {
            let bell = Arc::new(Bell::default());
            let (mailbox, inbox) = mailbox::<Arc<()>, _>(bell);
            let mailbox = Arc::new(mailbox);
            let token = Arc::new(());
            let poster = {
                let mailbox = mailbox.clone();
                let token = token.clone();
                loom::thread::spawn(move || {
                    // Either queued (and dropped with the inbox) or refused
                    // (and dropped here): never kept alive.
                    let _ = mailbox.post(token);
                })
            };
            drop(inbox);
            poster.join().unwrap();
            assert_eq!(Arc::strong_count(&token), 1, "a task outlived the loop");
        });
    }
}
