//! Copy buffers kept for reuse, per thread: a direction of the pipe takes
//! one when data arrives and gives it back as soon as everything read has
//! been written, so a message costs no `malloc`/`free` of a large buffer,
//! and an idle connection holds no buffer at all.
//!
//! Two sizes: [`LARGE`] (64 KiB) for the portable copy (TLS records, Unix
//! sockets, `--no-splice`), [`SMALL`] (16 KiB) for the copy phase of TCP
//! to TCP, where bulk traffic moves on to splice(2). Each thread keeps at
//! most [`Pool::max`] free buffers of a size (1 MiB each); past that a
//! buffer given back is freed. A buffer taken on one thread and given back
//! on another (a task that moved) simply joins the other thread's pool.
//!
//! A buffer may hold a previous connection's bytes: its users only ever
//! write out what they have just read into it.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::thread::LocalKey;

/// Free buffers of one size, per thread.
type Free = RefCell<Vec<Box<[u8]>>>;

thread_local! {
    static SMALL_FREE: Free = const { RefCell::new(Vec::new()) };
    static LARGE_FREE: Free = const { RefCell::new(Vec::new()) };
}

/// A size of buffer and its per-thread pool.
pub(super) struct Pool {
    /// Bytes per buffer.
    size: usize,
    /// The most free buffers a thread keeps.
    max: usize,
    free: &'static LocalKey<Free>,
}

/// 16 KiB buffers: the copy phase of TCP to TCP.
pub(super) static SMALL: Pool = Pool {
    size: 16 * 1024,
    max: 64,
    free: &SMALL_FREE,
};

/// 64 KiB buffers: the portable copy, large enough for bulk transfers
/// through TLS records and Unix sockets to run at full speed.
pub(super) static LARGE: Pool = Pool {
    size: 64 * 1024,
    max: 16,
    free: &LARGE_FREE,
};

impl Pool {
    /// A buffer of this pool's size: a free one of this thread's, or a
    /// new one.
    pub(super) fn take(&'static self) -> Buf {
        let bytes = self
            .free
            .try_with(|free| free.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![0u8; self.size].into_boxed_slice());
        Buf { bytes, pool: self }
    }

    /// Free buffers this thread holds (for tests).
    #[cfg(test)]
    pub(super) fn free_here(&self) -> usize {
        self.free.with(|free| free.borrow().len())
    }
}

/// A buffer from a [`Pool`]; dropping it gives it back.
pub(super) struct Buf {
    bytes: Box<[u8]>,
    pool: &'static Pool,
}

impl Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        let max = self.pool.max;
        // Past the thread's end (its pool already gone) the buffer is freed.
        let _ = self.pool.free.try_with(|free| {
            let mut free = free.borrow_mut();
            if free.len() < max {
                free.push(bytes);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_up_to_the_cap() {
        let before = SMALL.free_here();
        let a = SMALL.take();
        assert_eq!(a.len(), 16 * 1024);
        let ptr = a.as_ptr();
        drop(a);
        assert_eq!(SMALL.free_here(), before.max(1));
        let b = SMALL.take();
        assert_eq!(b.as_ptr(), ptr, "the freed buffer is taken again");
        drop(b);
        let many: Vec<Buf> = (0..SMALL.max + 5).map(|_| SMALL.take()).collect();
        drop(many);
        assert_eq!(SMALL.free_here(), SMALL.max);
        assert_eq!(LARGE.take().len(), 64 * 1024);
    }
}
