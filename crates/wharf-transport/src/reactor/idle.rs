//! What a loop gives back when it goes idle.
//!
//! A busy loop's thread caches hold free blocks of every size its
//! connections used, its slab keeps the capacity of the largest crowd it
//! served, and the C library's heap keeps the pages the crowd's
//! connections were allocated in (glibc returns memory only from the top
//! of a heap). That is what makes the next burst cheap, and it is memory an
//! idle server should not hold: after 10 000 connections left, the file
//! server stayed at 77 MiB instead of the 6 MiB it started with (issue 9,
//! point 8). So after a second with nothing to do, the loop trims the
//! thread caches of the allocators its channels use (empty pool chunks
//! then go back to the OS), shrinks its slab and returns the free heap to
//! the kernel (`malloc_trim`), once per idle spell.

use std::time::{Duration, Instant};

use wharf_buf::Allocator;

use crate::reactor::event_loop::EventLoop;
use crate::time::saturating_add;

/// How long a loop has nothing to do before it trims.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// When the loop last worked, and what it trims.
#[derive(Debug)]
pub(crate) struct IdleTrim {
    /// The allocators of the channels registered on the loop so far.
    allocators: Vec<Allocator>,
    last_busy: Instant,
    trimmed: bool,
}

impl Default for IdleTrim {
    fn default() -> IdleTrim {
        IdleTrim {
            allocators: Vec::new(),
            last_busy: Instant::now(),
            trimmed: true,
        }
    }
}

impl IdleTrim {
    /// Remembers an allocator a channel of this loop uses.
    pub(crate) fn track(&mut self, allocator: Allocator) {
        if !self.allocators.contains(&allocator) {
            self.allocators.push(allocator);
        }
    }

    /// When the loop should wake to trim, if it has not yet.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        (!self.trimmed).then(|| saturating_add(self.last_busy, IDLE_AFTER))
    }
}

impl EventLoop {
    /// After each iteration: note activity, or trim once the loop has been
    /// idle long enough.
    pub(crate) fn idle_step(&mut self) {
        let now = self.env.now;
        if self.active {
            self.idle.last_busy = now;
            self.idle.trimmed = false;
            return;
        }
        if self.idle.trimmed || now.saturating_duration_since(self.idle.last_busy) < IDLE_AFTER {
            return;
        }
        self.idle.trimmed = true;
        for allocator in &self.idle.allocators {
            allocator.trim_thread_cache();
        }
        self.slots.shrink();
        self.timers.shrink();
        self.env.pipes.trim();
        crate::sys::heap::release_free_heap();
    }
}
