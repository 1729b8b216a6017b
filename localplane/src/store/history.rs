//! The bounded event history that lets a watch resume from a resourceVersion, and compaction.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub etype: EventType,
    /// The resource type key (`group/plural`).
    pub key: String,
    pub namespace: String,
    pub object: Arc<Value>,
}

#[derive(Debug)]
pub struct History {
    events: VecDeque<Arc<Event>>,
    cap: usize,
    /// Events with rv <= compacted may be gone: resuming from before it is `410 Expired`.
    pub compacted: u64,
}

impl History {
    pub fn new(cap: usize) -> Self {
        History { events: VecDeque::new(), cap: cap.max(1), compacted: 0 }
    }

    pub fn push(&mut self, e: Arc<Event>) {
        if self.events.len() >= self.cap
            && let Some(old) = self.events.pop_front()
        {
            self.compacted = old.rv;
        }
        self.events.push_back(e);
    }

    /// Forgets everything up to `rv` (the test hook that forces 410s).
    pub fn compact(&mut self, rv: u64) {
        self.events.retain(|e| e.rv > rv);
        self.compacted = self.compacted.max(rv);
    }

    /// The events strictly after `rv`, or `Err(compacted)` when some may be missing.
    pub fn since(&self, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        if rv < self.compacted {
            return Err(self.compacted);
        }
        let start = self.events.partition_point(|e| e.rv <= rv);
        Ok(self.events.iter().skip(start).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(rv: u64) -> Arc<Event> {
        Arc::new(Event {
            rv,
            etype: EventType::Added,
            key: "k".into(),
            namespace: String::new(),
            object: Arc::new(Value::Null),
        })
    }

    #[test]
    fn bounded_and_compactable() {
        let mut h = History::new(3);
        for rv in 1..=5 {
            h.push(ev(rv));
        }
        assert_eq!(h.since(1).err(), Some(2));
        assert_eq!(h.since(3).unwrap().iter().map(|e| e.rv).collect::<Vec<_>>(), vec![4, 5]);
        h.compact(5);
        assert_eq!(h.since(4).err(), Some(5));
        assert!(h.since(5).unwrap().is_empty());
    }
}
