//! [`ChunkedQueue`]: a first-in first-out queue that grows by whole chunks, so that no push
//! waits while the whole queue is copied.
//!
//! A `VecDeque` that is full allocates one twice its size and copies every element into it
//! inside the push that found it full. The duplicate tables' queues hold up to millions of
//! `(time, key)` records, tens of megabytes: that copy is milliseconds on the exchange thread
//! (BENCHMARKS.md). This queue is a `VecDeque` of chunks of [`QUEUE_CHUNK_LEN`] elements: a
//! push that fills the last chunk allocates one more, and a pop that empties the first frees
//! it. Only the list of chunks ever doubles, and it is a thousandth of the size.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::collections::VecDeque;
use std::fmt;

/// Elements per chunk: large enough that a chunk's allocation is rare (once per 4,096 pushes)
/// and the list of chunks small, small enough (under 200 KB for the largest element) that
/// allocating one is not a stall of its own.
pub const QUEUE_CHUNK_LEN: usize = 4096;

/// A FIFO queue in chunks of [`QUEUE_CHUNK_LEN`]. See the module docs.
#[derive(Clone)]
pub struct ChunkedQueue<T> {
    /// Each chunk a `VecDeque` of capacity `QUEUE_CHUNK_LEN`: pushes go to the back of the last,
    /// pops come from the front of the first. No chunk is empty.
    chunks: VecDeque<VecDeque<T>>,
    len: usize,
}

impl<T> Default for ChunkedQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> ChunkedQueue<T> {
    pub const fn new() -> Self {
        Self {
            chunks: VecDeque::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push_back(&mut self, value: T) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < QUEUE_CHUNK_LEN => last.push_back(value),
            _ => {
                let mut chunk = VecDeque::with_capacity(QUEUE_CHUNK_LEN);
                chunk.push_back(value);
                self.chunks.push_back(chunk);
            }
        }
        self.len = self.len.saturating_add(1);
    }

    pub fn front(&self) -> Option<&T> {
        self.chunks.front().and_then(VecDeque::front)
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let first = self.chunks.front_mut()?;
        let value = first.pop_front();
        if first.is_empty() {
            self.chunks.pop_front();
        }
        if value.is_some() {
            self.len = self.len.saturating_sub(1);
        }
        value
    }

    /// The elements, front to back.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.chunks.iter().flatten()
    }
}

impl<T: fmt::Debug> fmt::Debug for ChunkedQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Equal when both hold the same elements in the same order, however they are chunked.
impl<T: PartialEq> PartialEq for ChunkedQueue<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for ChunkedQueue<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_a_vec_deque() {
        let mut queue = ChunkedQueue::new();
        let mut model = VecDeque::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..100_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Pushes outnumber pops at first, then pops catch up: the queue crosses many chunk
            // boundaries both ways and empties.
            let push = if step < 60_000 {
                rng % 3 != 0
            } else {
                rng % 3 == 0
            };
            if push {
                queue.push_back(step);
                model.push_back(step);
            } else {
                assert_eq!(queue.pop_front(), model.pop_front());
            }
            assert_eq!(queue.front(), model.front());
            assert_eq!(queue.len(), model.len());
        }
        assert!(queue.iter().eq(model.iter()));
        while let Some(value) = model.pop_front() {
            assert_eq!(queue.pop_front(), Some(value));
        }
        assert_eq!(queue.pop_front(), None);
        assert!(queue.is_empty() && queue.chunks.is_empty());
    }

    #[test]
    fn chunks_stay_full_but_for_the_ends() {
        let mut queue = ChunkedQueue::new();
        for value in 0..(3 * QUEUE_CHUNK_LEN + 5) {
            queue.push_back(value);
        }
        assert_eq!(queue.chunks.len(), 4);
        for _ in 0..QUEUE_CHUNK_LEN {
            queue.pop_front();
        }
        assert_eq!(queue.chunks.len(), 3, "an emptied chunk is freed");
        assert!(
            queue
                .chunks
                .iter()
                .all(|chunk| chunk.capacity() >= QUEUE_CHUNK_LEN
                    && chunk.capacity() < 2 * QUEUE_CHUNK_LEN)
        );
    }

    #[test]
    fn equality_ignores_the_chunking() {
        let mut a = ChunkedQueue::new();
        let mut b = ChunkedQueue::new();
        for value in 0..(QUEUE_CHUNK_LEN + 10) {
            a.push_back(value);
        }
        b.push_back(usize::MAX);
        for value in 0..(QUEUE_CHUNK_LEN + 10) {
            b.push_back(value);
        }
        b.pop_front();
        assert_eq!(a, b);
        b.push_back(1);
        assert_ne!(a, b);
    }
}
