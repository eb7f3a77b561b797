//! The adaptive receive size: how big the next read buffer should be.
//!
//! Netty's `AdaptiveRecvByteBufAllocator`: the size moves along a table of
//! sizes (16-byte steps up to 512, then doubling), jumping up four steps
//! after a read that filled the buffer and stepping down one after two
//! reads in a row that would have fit one step lower with room to spare
//! (Netty does not ask for them to be in a row; a single large read in
//! between resets it here). Netty also steps down when the reads would
//! exactly fill the smaller buffer; then every later read fills it, and a
//! full read means another read that finds nothing (`EAGAIN`): with 64-byte
//! messages that doubled the reads per event. A buffer is allocated per
//! read from the pool, so an idle connection holds no receive buffer.

use crate::channel::config::RecvSize;

/// Steps up after a full read.
const INDEX_INCREMENT: usize = 4;
/// Steps down after two small reads.
const INDEX_DECREMENT: usize = 1;

/// The table of sizes: 16, 32, …, 496, then 512, 1024, … up to 2^30.
fn size_table() -> &'static [usize] {
    use std::sync::OnceLock;
    static TABLE: OnceLock<Vec<usize>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<usize> = (1..32).map(|i| i * 16).collect();
        let mut size = 512;
        while size <= 1 << 30 {
            table.push(size);
            size <<= 1;
        }
        table
    })
}

/// Index of the smallest table size at least `size`.
fn index_of(size: usize) -> usize {
    let table = size_table();
    table.partition_point(|&s| s < size).min(table.len() - 1)
}

/// Guesses the next read size for one channel. Indexes into the table
/// (of 53 sizes) are bytes: every connection keeps one of these.
#[derive(Debug, Clone)]
pub(crate) struct AdaptiveRecvSizer {
    min_index: u8,
    max_index: u8,
    index: u8,
    decrease_now: bool,
}

/// An index into the table as kept.
fn narrow(index: usize) -> u8 {
    u8::try_from(index).expect("the size table has fewer than 256 entries")
}

impl AdaptiveRecvSizer {
    pub(crate) fn new(config: RecvSize) -> AdaptiveRecvSizer {
        let min_index = index_of(config.min);
        let max_index = index_of(config.max).max(min_index);
        AdaptiveRecvSizer {
            min_index: narrow(min_index),
            max_index: narrow(max_index),
            index: narrow(index_of(config.initial).clamp(min_index, max_index)),
            decrease_now: false,
        }
    }

    /// Size of the next read buffer.
    pub(crate) fn next_size(&self) -> usize {
        size_table()[usize::from(self.index)]
    }

    /// Learns from a read of `actual` bytes into a buffer of `attempted`.
    pub(crate) fn record(&mut self, actual: usize, attempted: usize) {
        let table = size_table();
        let index = usize::from(self.index);
        let lower = index
            .saturating_sub(INDEX_DECREMENT)
            .max(usize::from(self.min_index));
        if actual < table[lower] {
            if self.decrease_now {
                self.index = narrow(lower);
                self.decrease_now = false;
            } else {
                self.decrease_now = true;
            }
        } else {
            if actual >= attempted.min(table[index]) {
                self.index = narrow((index + INDEX_INCREMENT).min(usize::from(self.max_index)));
            }
            // Shrinking takes two small reads in a row.
            self.decrease_now = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizer() -> AdaptiveRecvSizer {
        AdaptiveRecvSizer::new(RecvSize::default())
    }

    #[test]
    fn starts_at_the_initial_size() {
        assert_eq!(sizer().next_size(), 2048);
    }

    #[test]
    fn grows_after_full_reads_up_to_the_maximum() {
        let mut s = sizer();
        let mut seen = vec![s.next_size()];
        for _ in 0..5 {
            let size = s.next_size();
            s.record(size, size);
            seen.push(s.next_size());
        }
        assert_eq!(seen, [2048, 32768, 65536, 65536, 65536, 65536]);
    }

    #[test]
    fn shrinks_one_step_after_two_short_reads() {
        let mut s = sizer();
        s.record(10, 2048);
        assert_eq!(s.next_size(), 2048, "one short read is not enough");
        s.record(10, 2048);
        assert_eq!(s.next_size(), 1024);
        for _ in 0..200 {
            let size = s.next_size();
            s.record(1, size);
        }
        assert_eq!(s.next_size(), 64, "never below the minimum");
    }

    #[test]
    fn settles_above_a_steady_message_size_so_reads_end_short() {
        let mut s = sizer();
        for _ in 0..400 {
            let size = s.next_size();
            s.record(64, size);
        }
        assert_eq!(
            s.next_size(),
            80,
            "64-byte reads would fill a 64-byte buffer"
        );
    }

    #[test]
    fn a_read_in_between_resets_the_shrink() {
        let mut s = sizer();
        s.record(10, 2048);
        s.record(1500, 2048);
        s.record(10, 2048);
        assert_eq!(s.next_size(), 2048);
    }
}
