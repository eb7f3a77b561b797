//! The loop thread's spare collections: the `Vec`s and `VecDeque`s a
//! connection needs only while something is in them (the outbound queue,
//! what the codec decoded and encoded).
//!
//! A connection that keeps an emptied collection keeps its capacity: four
//! entries after its first message, 528 bytes for an outbound queue. With
//! ten thousand idle connections that was most of their memory (issue 12,
//! goal 4). So an emptied collection goes back to its thread instead, one
//! spare per element type, and the next connection that needs one takes
//! it: a busy loop reuses the same few allocations, an idle connection
//! holds none. Only the loop's own thread sees its spares (a thread
//! local, no locking); a spare much larger than a usual batch is dropped
//! rather than kept. The outbound queue, the encoded entries and decoded
//! buffers, taken and given back around every write or read, have cells
//! of their own; other element types (a codec's messages) are found by
//! type among the rest.
//! While the thread's locals are being torn down, nothing is kept or
//! taken: collections are then made and dropped as usual.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::thread::LocalKey;

use wharf_buf::ByteBuf;

use crate::channel::outbound::OutboundMessage;

/// A spare larger than this many bytes is not kept.
const MAX_SPARE_BYTES: usize = 64 << 10;

thread_local! {
    /// One spare per element type, each a `Box<C>` of an empty collection
    /// (a handful of types per loop: a linear search).
    static SPARES: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    /// The outbound queue's spare.
    static QUEUE: Cell<VecDeque<OutboundMessage>> = const { Cell::new(VecDeque::new()) };
    /// The encoded entries' spare.
    static ENTRIES: Cell<Vec<OutboundMessage>> = const { Cell::new(Vec::new()) };
    /// The spare of decoded buffers (the messages of `RawBytes` and of
    /// every codec that passes bytes up): taken and given back around
    /// every decode, so it has a cell of its own, found without a search.
    static BUFFERS: Cell<Vec<ByteBuf>> = const { Cell::new(Vec::new()) };
}

/// A collection whose emptied allocation can be kept for reuse.
pub(crate) trait Reusable: Any + Default {
    /// Bytes its allocation holds.
    fn allocated(&self) -> usize;
    /// Whether it holds no elements.
    fn holds_nothing(&self) -> bool;
}

impl<T: 'static> Reusable for Vec<T> {
    fn allocated(&self) -> usize {
        self.capacity() * size_of::<T>()
    }

    fn holds_nothing(&self) -> bool {
        self.is_empty()
    }
}

impl<T: 'static> Reusable for VecDeque<T> {
    fn allocated(&self) -> usize {
        self.capacity() * size_of::<T>()
    }

    fn holds_nothing(&self) -> bool {
        self.is_empty()
    }
}

/// An empty collection: this thread's spare if it has one (with its
/// capacity), otherwise a new one (without).
pub(crate) fn take<C: Reusable>() -> C {
    let mut taken = C::default();
    if let Some(buffers) = (&mut taken as &mut dyn Any).downcast_mut::<Vec<ByteBuf>>() {
        let _ = BUFFERS.try_with(|cell| cell.swap(Cell::from_mut(buffers)));
        return taken;
    }
    SPARES
        .try_with(|spares| {
            let mut spares = spares.borrow_mut();
            spares
                .iter_mut()
                .find_map(|spare| spare.downcast_mut::<C>())
                .map(std::mem::take)
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Gives an emptied collection back to this thread, unless the thread has
/// a spare at least as large already, or it is too large to keep.
pub(crate) fn give<C: Reusable>(mut collection: C) {
    if let Some(buffers) = (&mut collection as &mut dyn Any).downcast_mut::<Vec<ByteBuf>>() {
        keep_larger(&BUFFERS, buffers);
        return;
    }
    if !keepable(&collection) {
        return;
    }
    let bytes = collection.allocated();
    let _ = SPARES.try_with(|spares| {
        let mut spares = spares.borrow_mut();
        match spares
            .iter_mut()
            .find_map(|spare| spare.downcast_mut::<C>())
        {
            Some(spare) if spare.allocated() < bytes => *spare = collection,
            Some(_) => {}
            None => spares.push(Box::new(collection)),
        }
    });
}

/// Whether `collection` is worth keeping as a spare.
fn keepable<C: Reusable>(collection: &C) -> bool {
    debug_assert!(collection.holds_nothing(), "a spare must be empty");
    let bytes = collection.allocated();
    bytes > 0 && bytes <= MAX_SPARE_BYTES && collection.holds_nothing()
}

/// Keeps the larger of `collection` and the spare in `cell`, leaving
/// `collection` without an allocation. The two are swapped rather than
/// taken and set: the spare is usually absent (a connection took it), and
/// a swap then moves nothing that needs dropping.
fn keep_larger<C: Reusable>(cell: &'static LocalKey<Cell<C>>, collection: &mut C) {
    let bytes = collection.allocated();
    if keepable(collection) {
        let _ = cell.try_with(|cell| {
            cell.swap(Cell::from_mut(collection));
            if collection.allocated() > bytes {
                // The spare there was larger: it stays.
                cell.swap(Cell::from_mut(collection));
            }
        });
    }
    if collection.allocated() > 0 {
        // Not kept (or the smaller of the two): dropped.
        *collection = C::default();
    }
}

/// Gives `queue` (without an allocation) this thread's spare outbound
/// queue, if it has one.
pub(crate) fn take_queue(queue: &mut VecDeque<OutboundMessage>) {
    debug_assert_eq!(
        queue.capacity(),
        0,
        "only an unallocated queue takes the spare"
    );
    let _ = QUEUE.try_with(|cell| cell.swap(Cell::from_mut(queue)));
}

/// Gives an outbound queue's allocation back to this thread if the queue
/// is empty and has one, leaving it without.
pub(crate) fn give_back_queue(queue: &mut VecDeque<OutboundMessage>) {
    if queue.is_empty() && queue.capacity() > 0 {
        keep_larger(&QUEUE, queue);
    }
}

/// Empty encoded entries: this thread's spare if it has them.
pub(crate) fn take_entries() -> Vec<OutboundMessage> {
    ENTRIES.try_with(Cell::take).unwrap_or_default()
}

/// Gives emptied encoded entries back to this thread.
pub(crate) fn give_entries(mut entries: Vec<OutboundMessage>) {
    keep_larger(&ENTRIES, &mut entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_collection_is_taken_again_with_its_capacity() {
        let mut v: Vec<u64> = take();
        assert_eq!(v.capacity(), 0, "no spare at first");
        v.extend([1, 2, 3]);
        v.clear();
        let cap = v.capacity();
        give(v);
        let again: Vec<u64> = take();
        assert_eq!(again.capacity(), cap, "the spare, with its capacity");
        let none: Vec<u64> = take();
        assert_eq!(none.capacity(), 0, "one spare per type");
        let other: VecDeque<u64> = take();
        assert_eq!(other.capacity(), 0, "spares are per type");
    }

    #[test]
    fn the_larger_spare_is_kept_and_huge_ones_are_not() {
        give(Vec::<u32>::with_capacity(4));
        give(Vec::<u32>::with_capacity(16));
        give(Vec::<u32>::with_capacity(8));
        assert_eq!(take::<Vec<u32>>().capacity(), 16);
        give(Vec::<u32>::with_capacity(MAX_SPARE_BYTES));
        assert_eq!(take::<Vec<u32>>().capacity(), 0, "too large to keep");
    }

    #[test]
    fn decoded_buffers_have_a_cell_of_their_own() {
        give(Vec::<ByteBuf>::with_capacity(4));
        give(Vec::<ByteBuf>::with_capacity(8));
        give(Vec::<ByteBuf>::with_capacity(2));
        assert_eq!(take::<Vec<ByteBuf>>().capacity(), 8, "the larger kept");
        assert_eq!(take::<Vec<ByteBuf>>().capacity(), 0, "one spare");
        assert!(
            SPARES.with(|s| s.borrow().iter().all(|s| !s.is::<Vec<ByteBuf>>())),
            "not among the others"
        );
    }

    #[test]
    fn the_outbound_spares_have_cells_of_their_own() {
        let mut queue = VecDeque::new();
        take_queue(&mut queue);
        queue.push_back(OutboundMessage::Buf(wharf_buf::ByteBuf::new()));
        queue.clear();
        let cap = queue.capacity();
        give_back_queue(&mut queue);
        assert_eq!(queue.capacity(), 0, "given back");
        let mut again = VecDeque::new();
        take_queue(&mut again);
        assert_eq!(again.capacity(), cap);
        give_entries(Vec::with_capacity(3));
        assert_eq!(take_entries().capacity(), 3);
        assert_eq!(take_entries().capacity(), 0, "one spare");
    }
}
