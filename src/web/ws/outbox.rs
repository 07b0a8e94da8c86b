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
    frames: Mutex<VecDeque<Utf8Bytes>>,
    capacity: usize,
    /// A frame was queued (the writer waits on it).
    readable: Notify,
    /// A frame was taken (a session waiting for room waits on it).
    writable: Notify,
}

/// The queue holds `capacity` frames already: the socket is not keeping up.
#[derive(Debug)]
pub struct Full(pub Utf8Bytes);

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            frames: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    /// Queues `frame` if there is room.
    pub fn try_push(&self, frame: Utf8Bytes) -> Result<(), Full> {
        {
            let mut frames = self.frames.lock().expect("outbox lock");
            if frames.len() >= self.capacity {
                return Err(Full(frame));
            }
            frames.push_back(frame);
        }
        // A permit is stored if the writer is not waiting yet: not lost.
        self.readable.notify_one();
        Ok(())
    }

    /// Queues `frame`, waiting for room as long as it takes (callers bound
    /// the wait with a timeout).
    pub async fn push(&self, mut frame: Utf8Bytes) {
        loop {
            let room = self.writable.notified();
            match self.try_push(frame) {
                Ok(()) => return,
                Err(Full(back)) => frame = back,
            }
            room.await;
        }
    }

    /// The oldest queued frame, if any.
    pub fn try_pop(&self) -> Option<Utf8Bytes> {
        let frame = {
            let mut frames = self.frames.lock().expect("outbox lock");
            let frame = frames.pop_front();
            if frames.is_empty() && frames.capacity() > KEEP_SLOTS {
                // A burst is over: give its room back.
                *frames = VecDeque::new();
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
        let Full(refused) = outbox.try_push(frame("c")).unwrap_err();
        assert_eq!(refused.as_str(), "c", "the refused frame comes back");
        assert_eq!(outbox.frames.lock().unwrap().len(), 2);
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
            async move { outbox.push(frame("second")).await }
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
        assert!(outbox.frames.lock().unwrap().capacity() >= 100);
        for i in 0..100 {
            assert_eq!(outbox.pop().await.as_str(), i.to_string());
        }
        assert!(outbox.frames.lock().unwrap().capacity() <= KEEP_SLOTS);
    }
}
