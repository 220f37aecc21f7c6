//! The event bus: every status change and cancel request, fanned out to the
//! `/api/events` clients.
//!
//! A bounded broadcast ring: publishing never waits, and a subscriber that falls more
//! than `CAPACITY` events behind is told it lagged instead of holding anyone up.

use bytes::Bytes;
use servitor_shared::Event;
use tokio::sync::broadcast;

const CAPACITY: usize = 4096;

/// Events travel in their wire form, one compact JSON line, serialized once for all.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Bytes>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus {
    pub fn publish(&self, event: Event) {
        let mut line = serde_json::to_vec(&event).expect("events serialize");
        line.push(b'\n');
        // No subscriber is not an error.
        let _ = self.sender.send(line.into());
    }

    /// How many receivers listen (event clients).
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.sender.subscribe()
    }
}
