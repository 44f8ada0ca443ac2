//! Outgoing message pacing: never more than `max` messages in any `window`,
//! the way venues count them (a sliding window). Built on `tokio::time` so it
//! follows the paused test clock; a general-purpose limiter crate keeps its own
//! clock and would not.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// A sliding-window pacer.
#[derive(Debug, Clone)]
pub struct Pacer {
    max: usize,
    window: Duration,
    sent: VecDeque<Instant>,
}

impl Pacer {
    /// At most `max` (at least 1) messages per `window`.
    pub fn new(max: usize, window: Duration) -> Pacer {
        Pacer { max: max.max(1), window, sent: VecDeque::new() }
    }

    /// Waits until one more message fits, then records it.
    pub async fn acquire(&mut self) {
        loop {
            let now = Instant::now();
            while self.sent.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                self.sent.pop_front();
            }
            if self.sent.len() < self.max {
                self.sent.push_back(now);
                return;
            }
            let oldest = *self.sent.front().expect("non-empty when full");
            tokio::time::sleep_until(oldest + self.window).await;
        }
    }

    /// Records a message if one fits now; otherwise says when one will.
    pub fn try_acquire(&mut self) -> Result<(), Instant> {
        let now = Instant::now();
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            self.sent.pop_front();
        }
        if self.sent.len() < self.max {
            self.sent.push_back(now);
            Ok(())
        } else {
            Err(*self.sent.front().expect("non-empty when full") + self.window)
        }
    }

    /// Records a message the transport sent on its own (an automatic pong).
    pub fn record(&mut self) {
        self.sent.push_back(Instant::now());
    }

    /// Messages sent within the current window.
    pub fn used(&mut self) -> usize {
        let now = Instant::now();
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            self.sent.pop_front();
        }
        self.sent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_max_in_any_window() {
        let mut p = Pacer::new(5, Duration::from_secs(1));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..23 {
            p.acquire().await;
            times.push(Instant::now() - start);
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u - *t < Duration::from_secs(1)).count();
            assert!(in_window <= 5, "{in_window} messages within 1 s starting at {t:?}");
        }
        // 23 messages at 5/s take 4 full windows.
        assert_eq!(*times.last().unwrap(), Duration::from_secs(4));
    }
}
