//! Event loops: the poller (edge- or level-triggered epoll through mio),
//! the loop thread and what it dispatches to (the acceptor, the connector,
//! the channels), its timers, mailbox, registry and shutdown, and the
//! handle other threads reach it through.

pub(crate) mod acceptor;
pub(crate) mod connector;
pub(crate) mod event_loop;
pub(crate) mod handle;
pub(crate) mod idle;
pub(crate) mod listener;
pub(crate) mod loop_thread;
pub(crate) mod mailbox;
pub(crate) mod poller;
pub(crate) mod registration;
pub(crate) mod shutdown;
pub(crate) mod slots;
pub(crate) mod timer_queue;
