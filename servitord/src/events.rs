//! The event bus: every status change and cancel request, fanned out to the
//! `/api/events` clients and to log followers.
//!
//! A bounded broadcast ring: publishing never waits, and a subscriber that falls more
//! than `CAPACITY` events behind is told it lagged instead of holding anyone up.

use std::sync::Arc;

use bytes::Bytes;
use servitor_shared::Event;
use tokio::sync::broadcast;

const CAPACITY: usize = 4096;

/// An event with its wire form (one compact JSON line), serialized once for all clients.
#[derive(Debug)]
pub struct Published {
    pub event: Event,
    pub line: Bytes,
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Published>>,
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
        let _ = self.sender.send(Arc::new(Published {
            event,
            line: line.into(),
        }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.sender.subscribe()
    }
}
