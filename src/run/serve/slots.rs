//! The exporter's connections, at most `--max-connections` at once. A
//! connection is busy while a scrape it made waits for its scan and idle
//! otherwise: in its TLS handshake, sending its request, between requests.
//! When every slot is taken, a new connection takes the slot of the one
//! idle the longest, which is closed; when every one is busy, the new one
//! is refused (closed at once). Clients that open connections and send
//! nothing can therefore hold no slot a scraper needs: a real scrape sends
//! its request at once and is busy from then on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

pub struct Slots {
    max: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next: u64,
    conns: HashMap<u64, Entry>,
}

struct Entry {
    busy: u32,
    idle_since: Instant,
    close: Arc<Notify>,
}

/// A connection's slot: freed when the last clone is dropped.
#[derive(Clone)]
pub struct Slot(Arc<Inner>);

struct Inner {
    id: u64,
    slots: Arc<Slots>,
    /// Notified when another connection takes this slot.
    close: Arc<Notify>,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max: max.max(1),
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection, taken from the one idle the longest
    /// when all are taken; `None` when all are busy.
    pub fn admit(self: &Arc<Slots>) -> Option<Slot> {
        let mut open = self.lock();
        if open.conns.len() >= self.max {
            let victim = open
                .conns
                .iter()
                .filter(|(_, e)| e.busy == 0)
                .min_by_key(|(id, e)| (e.idle_since, **id))
                .map(|(id, _)| *id)?;
            if let Some(e) = open.conns.remove(&victim) {
                e.close.notify_one();
            }
        }
        let id = open.next;
        open.next += 1;
        let close = Arc::new(Notify::new());
        open.conns.insert(
            id,
            Entry {
                busy: 0,
                idle_since: Instant::now(),
                close: Arc::clone(&close),
            },
        );
        Some(Slot(Arc::new(Inner {
            id,
            slots: Arc::clone(self),
            close,
        })))
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }
}

impl Slot {
    /// Completes when another connection has taken this slot.
    pub async fn closed(&self) {
        self.0.close.notified().await;
    }

    /// Busy until the guard is dropped.
    pub fn busy(&self) -> Busy {
        if let Some(e) = self.0.slots.lock().conns.get_mut(&self.0.id) {
            e.busy += 1;
        }
        Busy(self.clone())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.slots.lock().conns.remove(&self.id);
    }
}

pub struct Busy(Slot);

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(e) = self.0.0.slots.lock().conns.get_mut(&self.0.0.id) {
            e.busy = e.busy.saturating_sub(1);
            e.idle_since = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Full: the longest idle gives way; all busy: refused; a slot is
    /// freed with its connection.
    #[test]
    fn the_longest_idle_gives_way_and_busy_ones_never_do() {
        let slots = Slots::new(2);
        let a = slots.admit().expect("a");
        let b = slots.admit().expect("b");
        let busy_b = b.busy();
        let c = slots.admit().expect("c takes a's slot");
        assert_eq!(slots.len(), 2);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        // a was told to close; b was not.
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), a.closed())
                .await
                .expect("a closed");
            let b_told = tokio::time::timeout(std::time::Duration::from_millis(20), b.closed());
            assert!(b_told.await.is_err(), "a busy connection is never closed");
        });
        let busy_c = c.busy();
        assert!(slots.admit().is_none(), "all busy: refused");
        drop(busy_c);
        drop(c);
        assert_eq!(slots.len(), 1);
        let d = slots.admit().expect("d");
        drop(busy_b);
        // b was busy until now, d idle since it came: d is the older idle.
        let _e = slots.admit().expect("e");
        assert_eq!(slots.len(), 2);
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), d.closed())
                .await
                .expect("d closed");
        });
        drop(a);
    }
}
