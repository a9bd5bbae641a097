//! Per-connection progress clocks, which the accept loop consults to close
//! the longest-idle connection when every slot is taken and a new
//! connection is waiting (what nginx's `ngx_drain_connections` does for
//! keep-alive connections).
//!
//! The accept loop knows no service: a connection's task gets an
//! [`Activity`] and calls [`Activity::progress`] when it makes progress
//! (the service decides what counts: a message served, a write that moved
//! bytes). That is one relaxed atomic store of a millisecond clock, no lock.
//! The clocks live in a table of slots grown in chunks as connections come
//! (16 bytes a slot), so a connection costs its slot and a 16-byte handle;
//! freeing a slot is the accept loop's business: it owns the free list and
//! frees a slot when it reaps the slot's task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A slot's clock value while the slot's connection may not be evicted
/// (being evicted already, or free).
const EXEMPT: u64 = u64::MAX;
/// A slot's state: its connection is in the middle of a message (or
/// says nothing about its messages, as relay does).
const BUSY: u8 = 0;
/// A slot's state: its connection waits between messages; shutdown may
/// close it at once.
const IDLE: u8 = 1;
/// A slot's state: shutdown is closing its connection.
const CLOSING: u8 = 2;
/// Slots per chunk: the table grows a chunk at a time, as connections
/// come, up to the connection limit.
const CHUNK: usize = 256;

/// One connection's slot: its clock and its state side by side, so the
/// writes of one message touch one cache line.
#[derive(Debug)]
struct Slot {
    /// Milliseconds from the epoch to the connection's last progress, or
    /// [`EXEMPT`].
    last: AtomicU64,
    /// [`BUSY`], [`IDLE`] or [`CLOSING`].
    state: AtomicU8,
}

/// One chunk of clocks.
#[derive(Debug)]
struct Chunk {
    /// What the clocks count milliseconds from (the table's epoch).
    epoch: Instant,
    /// The slots.
    slots: [Slot; CHUNK],
    /// The table's shutdown flag (one for every chunk).
    shutdown: Arc<AtomicBool>,
}

impl Chunk {
    /// Milliseconds from the epoch to `at`.
    fn millis(&self, at: Instant) -> u64 {
        // Saturates: an instant before the epoch counts as the epoch.
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(EXEMPT - 1)
    }
}

/// The progress clocks of every slot, grown a chunk at a time.
#[derive(Debug)]
pub(super) struct ActivityTable {
    epoch: Instant,
    chunks: Vec<Arc<Chunk>>,
    /// Set when shutdown starts: a connection about to wait between
    /// messages reads it (a plain load, where the shutdown token would
    /// take a lock shared by every connection).
    shutdown: Arc<AtomicBool>,
}

impl ActivityTable {
    /// An empty table.
    pub(super) fn new() -> ActivityTable {
        ActivityTable {
            epoch: Instant::now(),
            chunks: Vec::new(),
            shutdown: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The number of slots.
    pub(super) fn len(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// Adds a chunk of slots, all exempt.
    pub(super) fn grow(&mut self) {
        self.chunks.push(Arc::new(Chunk {
            epoch: self.epoch,
            slots: std::array::from_fn(|_| Slot {
                last: AtomicU64::new(EXEMPT),
                state: AtomicU8::new(BUSY),
            }),
            shutdown: self.shutdown.clone(),
        }));
    }

    /// The chunk and index of `slot`.
    fn at(&self, slot: u32) -> (&Arc<Chunk>, usize) {
        let slot = slot as usize;
        (&self.chunks[slot / CHUNK], slot % CHUNK)
    }

    /// Starts the clock of `slot` (a new connection counts as progress) and
    /// returns the handle its task updates it through. The connection
    /// starts between messages if `idle`, else in the middle of one.
    pub(super) fn start(&self, slot: u32, idle: bool) -> Activity {
        let (chunk, index) = self.at(slot);
        chunk.slots[index]
            .last
            .store(chunk.millis(Instant::now()), Ordering::Relaxed);
        let state = if idle { IDLE } else { BUSY };
        chunk.slots[index].state.store(state, Ordering::SeqCst);
        Activity {
            chunk: chunk.clone(),
            index: index as u32,
        }
    }

    /// Marks `slot` as not evictable (its connection ended or is being
    /// closed).
    pub(super) fn exempt(&self, slot: u32) {
        let (chunk, index) = self.at(slot);
        chunk.slots[index].last.store(EXEMPT, Ordering::Relaxed);
    }

    /// Starts shutdown: from here on a connection that says it is
    /// between messages learns it should close. Call before
    /// [`close_if_idle`](ActivityTable::close_if_idle): with both sides'
    /// operations sequentially consistent, either the sweep sees a
    /// connection idle or the connection sees the shutdown.
    pub(super) fn start_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// At shutdown: marks `slot`'s connection as being closed if it waits
    /// between messages, and says whether it did (the caller then closes
    /// it). A connection in the middle of a message is left to finish.
    pub(super) fn close_if_idle(&self, slot: u32) -> bool {
        let (chunk, index) = self.at(slot);
        chunk.slots[index]
            .state
            .compare_exchange(IDLE, CLOSING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The slot whose connection has made no progress for the longest
    /// time, if that is at least `min_idle`; with how long it has been
    /// idle. A scan of every slot: the accept loop calls it only at the
    /// connection limit with a new connection waiting.
    pub(super) fn longest_idle(&self, min_idle: Duration) -> Option<(u32, Duration)> {
        let (slot, last) = (0u32..)
            .zip(self.chunks.iter().flat_map(|chunk| chunk.slots.iter()))
            .map(|(slot, s)| (slot, s.last.load(Ordering::Relaxed)))
            .filter(|&(_, last)| last != EXEMPT)
            .min_by_key(|&(_, last)| last)?;
        let now = self.chunks.first()?.millis(Instant::now());
        let idle = Duration::from_millis(now.saturating_sub(last));
        (idle >= min_idle).then_some((slot, idle))
    }
}

/// A connection's progress clock: the service calls [`progress`] whenever
/// the connection moves forward, and the accept loop, at the connection
/// limit, closes the connection whose last progress is the oldest.
///
/// [`progress`]: Activity::progress
#[derive(Debug)]
pub struct Activity {
    chunk: Arc<Chunk>,
    index: u32,
}

impl Activity {
    /// Records progress at `now` (an instant the caller already has, to
    /// spare a clock read). One relaxed atomic store.
    #[inline]
    pub fn progress(&self, now: Instant) {
        let clock = &self.chunk.slots[self.index as usize].last;
        // A connection being evicted stays exempt.
        if clock.load(Ordering::Relaxed) != EXEMPT {
            clock.store(self.chunk.millis(now), Ordering::Relaxed);
        }
    }

    /// Says the connection waits between messages: at shutdown, the accept
    /// loop may close it at once. Returns `true` if shutdown has started
    /// already: the connection should then close by itself.
    #[inline]
    pub fn set_idle(&self) -> bool {
        let state = &self.chunk.slots[self.index as usize].state;
        // Never undoes CLOSING.
        let _ = state.compare_exchange(BUSY, IDLE, Ordering::SeqCst, Ordering::SeqCst);
        self.chunk.shutdown.load(Ordering::SeqCst)
    }

    /// Says a message started. `false` if shutdown is closing the
    /// connection: the caller must not serve it.
    #[inline]
    pub fn set_busy(&self) -> bool {
        let state = &self.chunk.slots[self.index as usize].state;
        match state.load(Ordering::Relaxed) {
            BUSY => true,
            _ => state
                .compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn shutdown_closes_only_connections_between_messages() {
        let mut table = ActivityTable::new();
        table.grow();
        let a = table.start(0, false);
        let b = table.start(1, false);
        // A new connection is busy until it says otherwise...
        assert!(!table.close_if_idle(0));
        assert!(!a.set_idle());
        assert!(!b.set_idle());
        assert!(b.set_busy());
        assert!(table.close_if_idle(0));
        assert!(!table.close_if_idle(1));
        // Once closing, a connection stays closing.
        assert!(!a.set_busy());
        a.set_idle();
        assert!(!a.set_busy());
        // Once shutdown starts, a connection going idle is told.
        table.start_shutdown();
        assert!(b.set_idle());
        // A slot reused by a new connection starts afresh...
        let a = table.start(0, false);
        assert!(a.set_busy());
        // ...idle if its service says so.
        let _c = table.start(2, true);
        assert!(table.close_if_idle(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_longest_idle_connection_past_the_grace_is_chosen() {
        let mut table = ActivityTable::new();
        table.grow();
        let a = table.start(0, false);
        tokio::time::advance(Duration::from_millis(100)).await;
        let b = table.start(1, false);
        let _c = table.start(2, false);
        tokio::time::advance(Duration::from_secs(2)).await;
        // Slot 0 started first; the others are free.
        assert_eq!(
            table.longest_idle(Duration::from_secs(1)),
            Some((0, Duration::from_millis(2100)))
        );
        a.progress(Instant::now());
        assert_eq!(
            table.longest_idle(Duration::from_secs(1)).map(|x| x.0),
            Some(1)
        );
        // Nobody idle long enough: no victim.
        assert_eq!(table.longest_idle(Duration::from_secs(3)), None);
        // An evicted connection is skipped, even if it reports progress.
        table.exempt(1);
        b.progress(Instant::now());
        assert_eq!(
            table.longest_idle(Duration::from_secs(1)).map(|x| x.0),
            Some(2)
        );
    }
}
