//! Event loops: the poller (edge- or level-triggered epoll through mio),
//! the loop thread, its timers, task queue and counters, and the handle
//! other threads reach it through.

pub(crate) mod event_loop;
pub(crate) mod handle;
pub(crate) mod poller;
pub(crate) mod stats;
pub(crate) mod timer;
