//! `ChannelHandle`: write to or close a channel from any thread.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::EventLoopHandle;
use crate::channel::context::{RemoteOp, post_remote_ops};
use crate::channel::outbound::ENTRY_OVERHEAD;
use crate::channel::shared::{ChannelId, ChannelShared};
use crate::file_region::TransferStats;

/// A cloneable, `Send` handle to a channel, typed by the messages its
/// handler writes.
///
/// Every operation is posted to the channel's event loop and applied there
/// in order: writes from one thread arrive in the order they were made.
/// A write counts against the water marks at once (by the codec's size
/// estimate), so [`is_writable`](Self::is_writable) reflects writes still on
/// their way. Operations on a closed channel are dropped.
///
/// Threading: `Send + Sync`; use it from any thread, including the loop's.
pub struct ChannelHandle<O> {
    shared: Arc<ChannelShared>,
    size_of: fn(&O) -> usize,
}

impl<O> Clone for ChannelHandle<O> {
    fn clone(&self) -> Self {
        ChannelHandle {
            shared: Arc::clone(&self.shared),
            size_of: self.size_of,
        }
    }
}

impl<O> fmt::Debug for ChannelHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelHandle")
            .field("id", &self.shared.id)
            .field("peer", &self.shared.peer_addr())
            .finish()
    }
}

impl<O: Send + 'static> ChannelHandle<O> {
    pub(crate) fn new(shared: Arc<ChannelShared>, size_of: fn(&O) -> usize) -> Self {
        ChannelHandle { shared, size_of }
    }

    /// The channel's shared state (for links made on its loop).
    pub(crate) fn shared(&self) -> &Arc<ChannelShared> {
        &self.shared
    }

    fn write_op(&self, msg: O) -> RemoteOp<O> {
        let estimate = (self.size_of)(&msg) + ENTRY_OVERHEAD;
        self.shared.add_pending(estimate);
        RemoteOp::Write(msg, estimate)
    }

    /// Queues a message; it is sent at the next flush.
    pub fn write(&self, msg: O) {
        let op = self.write_op(msg);
        post_remote_ops(&self.shared, vec![op], false);
    }

    /// Queues a message and flushes.
    pub fn write_and_flush(&self, msg: O) {
        let op = self.write_op(msg);
        post_remote_ops(&self.shared, vec![op, RemoteOp::Flush], false);
    }

    /// Sends what was written.
    pub fn flush(&self) {
        post_remote_ops::<O>(&self.shared, vec![RemoteOp::Flush], false);
    }

    /// Closes the channel after flushing what was written (see
    /// [`Context::close`](crate::Context::close)).
    pub fn close(&self) {
        post_remote_ops::<O>(&self.shared, vec![RemoteOp::Close], false);
    }

    /// Shuts down the channel's output once what was written is sent.
    pub fn shutdown_output(&self) {
        post_remote_ops::<O>(&self.shared, vec![RemoteOp::ShutdownOutput], false);
    }

    /// Stops or resumes reading.
    pub fn set_auto_read(&self, auto_read: bool) {
        post_remote_ops::<O>(
            &self.shared,
            vec![RemoteOp::SetAutoReadFromHandle(auto_read)],
            false,
        );
    }

    /// Delivers [`UserEvent::Custom`](crate::UserEvent::Custom)`(event)` to
    /// the channel's handler, on the handler's thread.
    pub fn fire_user_event(&self, event: Box<dyn Any + Send>) {
        post_remote_ops::<O>(&self.shared, vec![RemoteOp::UserEvent(event)], false);
    }

    /// Whether the outbound queue is below the high water mark.
    pub fn is_writable(&self) -> bool {
        self.shared.is_writable()
    }

    /// Whether the channel is open.
    pub fn is_active(&self) -> bool {
        self.shared.is_active()
    }

    /// Bytes queued and not yet sent, with per-message overhead, including
    /// estimates for writes on their way.
    pub fn pending_outbound_bytes(&self) -> usize {
        self.shared.pending()
    }

    /// The channel's id.
    pub fn id(&self) -> ChannelId {
        self.shared.id
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.shared.peer_addr()
    }

    /// The channel's event loop.
    pub fn event_loop(&self) -> &EventLoopHandle {
        &self.shared.event_loop
    }

    /// File bytes and system calls of this channel, by transfer strategy.
    pub fn transfer_stats(&self) -> TransferStats {
        self.shared.extras.snapshot()
    }
}
