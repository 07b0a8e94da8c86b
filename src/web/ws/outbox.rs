//! One socket's queue of frames to send: bounded, filled by the hub (never
//! waiting) and by the socket's own session (waiting for room), emptied by
//! the socket's writer.
//!
//! Why not `tokio::sync::mpsc`: a bounded channel allocates a 32-slot block
//! and a cache-padded control block up front, about 1.5 KiB per socket,
//! which was a fifth of an idle socket's memory (docs/benchmarks.md). This
//! queue allocates only while frames are waiting, and gives the room back
//! once they are gone.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

/// A drained queue keeps at most this many slots of room.
const KEEP_SLOTS: usize = 4;

pub struct Outbox {
    queue: Mutex<Queue>,
    capacity: usize,
    /// A frame was queued (the writer waits on it).
    readable: Notify,
    /// A frame was taken (a session waiting for room waits on it).
    writable: Notify,
}

struct Queue {
    frames: VecDeque<Utf8Bytes>,
    /// The writer is gone: nothing will be sent any more.
    closed: bool,
}

/// Why a frame was not queued.
#[derive(Debug)]
pub enum Refused {
    /// The queue holds `capacity` frames already: the socket is not keeping up.
    Full(Utf8Bytes),
    /// The socket's writer has stopped.
    Closed,
}

/// The socket's writer has stopped: the frame will never be sent.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue {
                frames: VecDeque::new(),
                closed: false,
            }),
            capacity: capacity.max(1),
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    /// Queues `frame` if there is room.
    pub fn try_push(&self, frame: Utf8Bytes) -> Result<(), Refused> {
        {
            let mut queue = self.queue.lock().expect("outbox lock");
            if queue.closed {
                return Err(Refused::Closed);
            }
            if queue.frames.len() >= self.capacity {
                return Err(Refused::Full(frame));
            }
            queue.frames.push_back(frame);
        }
        // A permit is stored if the writer is not waiting yet: not lost.
        self.readable.notify_one();
        Ok(())
    }

    /// Queues `frame`, waiting for room as long as it takes (callers bound
    /// the wait with a timeout), or until the writer stops.
    pub async fn push(&self, mut frame: Utf8Bytes) -> Result<(), Closed> {
        loop {
            let room = self.writable.notified();
            match self.try_push(frame) {
                Ok(()) => return Ok(()),
                Err(Refused::Full(back)) => frame = back,
                Err(Refused::Closed) => return Err(Closed),
            }
            room.await;
        }
    }

    /// The writer stops: later pushes are refused at once, and a push
    /// waiting for room gives up now instead of at its timeout. Frames
    /// already queued can still be taken (a last flush).
    pub fn close(&self) {
        self.queue.lock().expect("outbox lock").closed = true;
        // Wakes every `notified()` created before this call, polled or not.
        self.writable.notify_waiters();
    }

    /// Whether the writer has stopped.
    pub fn is_closed(&self) -> bool {
        self.queue.lock().expect("outbox lock").closed
    }

    /// The oldest queued frame, if any.
    pub fn try_pop(&self) -> Option<Utf8Bytes> {
        let frame = {
            let mut queue = self.queue.lock().expect("outbox lock");
            let frame = queue.frames.pop_front();
            if queue.frames.is_empty() && queue.frames.capacity() > KEEP_SLOTS {
                // A burst is over: give its room back.
                queue.frames = VecDeque::new();
            }
            frame
        };
        if frame.is_some() {
            self.writable.notify_one();
        }
        frame
    }

    /// The oldest queued frame, waiting for one.
    pub async fn pop(&self) -> Utf8Bytes {
        loop {
            let queued = self.readable.notified();
            if let Some(frame) = self.try_pop() {
                return frame;
            }
            queued.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn frame(text: &str) -> Utf8Bytes {
        text.into()
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_a_full_queue_refuses_more() {
        let outbox = Outbox::new(2);
        outbox.try_push(frame("a")).unwrap();
        outbox.try_push(frame("b")).unwrap();
        let Refused::Full(refused) = outbox.try_push(frame("c")).unwrap_err() else {
            panic!("a full queue refuses as full");
        };
        assert_eq!(refused.as_str(), "c", "the refused frame comes back");
        assert_eq!(outbox.queue.lock().unwrap().frames.len(), 2);
        assert_eq!(outbox.pop().await.as_str(), "a");
        assert_eq!(outbox.try_pop().unwrap().as_str(), "b");
        assert!(outbox.try_pop().is_none());
    }

    #[tokio::test]
    async fn the_writer_wakes_for_a_frame_queued_while_it_waits() {
        let outbox = Arc::new(Outbox::new(4));
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.pop().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        outbox.try_push(frame("late")).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("the writer woke")
            .unwrap();
        assert_eq!(got.as_str(), "late");
    }

    #[tokio::test]
    async fn a_waiting_push_goes_in_once_the_writer_makes_room() {
        let outbox = Arc::new(Outbox::new(1));
        outbox.try_push(frame("first")).unwrap();
        let session = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.push(frame("second")).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!session.is_finished(), "no room yet: the push waits");
        assert_eq!(outbox.pop().await.as_str(), "first");
        tokio::time::timeout(Duration::from_secs(5), session)
            .await
            .expect("the push went in")
            .unwrap();
        assert_eq!(outbox.pop().await.as_str(), "second");
    }

    #[tokio::test]
    async fn a_drained_burst_gives_its_room_back() {
        let outbox = Outbox::new(256);
        for i in 0..100 {
            outbox.try_push(frame(&i.to_string())).unwrap();
        }
        assert!(outbox.queue.lock().unwrap().frames.capacity() >= 100);
        for i in 0..100 {
            assert_eq!(outbox.pop().await.as_str(), i.to_string());
        }
        assert!(outbox.queue.lock().unwrap().frames.capacity() <= KEEP_SLOTS);
    }

    #[tokio::test]
    async fn once_the_writer_stops_pushes_give_up_at_once() {
        let outbox = Arc::new(Outbox::new(1));
        outbox.try_push(frame("queued")).unwrap();
        // A session waiting for room (a client that stopped reading) …
        let session = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.push(frame("waiting")).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!session.is_finished(), "no room yet: the push waits");
        // … is released when the writer stops, not after its timeout.
        outbox.close();
        let waited = tokio::time::timeout(Duration::from_secs(5), session)
            .await
            .expect("the waiting push gave up")
            .unwrap();
        assert_eq!(waited, Err(Closed));
        assert!(outbox.is_closed());
        assert!(matches!(
            outbox.try_push(frame("late")),
            Err(Refused::Closed)
        ));
        assert_eq!(outbox.push(frame("later")).await, Err(Closed));
        // What was queued before can still go out in a last flush.
        assert_eq!(outbox.try_pop().unwrap().as_str(), "queued");
        assert!(outbox.try_pop().is_none());
    }
}
