//! Outgoing message pacing: never more than `max` messages in any `window`,
//! the way venues count them (a sliding window), and evenly spaced at
//! `window / max` so that delivery jitter (the venue counts on receipt) cannot
//! squeeze a burst into one of its windows. Built on `tokio::time` so it
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
    spaced: bool,
    sent: VecDeque<Instant>,
}

impl Pacer {
    /// At most `max` (at least 1) events per `window`; bursts allowed
    /// (connection attempts).
    pub fn new(max: usize, window: Duration) -> Pacer {
        Pacer { max: max.max(1), window, spaced: false, sent: VecDeque::new() }
    }

    /// At most `max` messages per `window`, evenly spaced `window / max` apart
    /// (client messages: the venue counts them on receipt, after network jitter).
    pub fn spaced(max: usize, window: Duration) -> Pacer {
        Pacer { spaced: true, ..Pacer::new(max, window) }
    }

    /// Waits until one more message fits, then records it.
    pub async fn acquire(&mut self) {
        while let Err(at) = self.try_acquire() {
            tokio::time::sleep_until(at).await;
        }
    }

    fn gap(&self) -> Duration {
        self.window / self.max as u32
    }

    /// Records a message if one fits now; otherwise says when one will.
    pub fn try_acquire(&mut self) -> Result<(), Instant> {
        let now = Instant::now();
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            self.sent.pop_front();
        }
        let spaced = match (self.spaced, self.sent.back()) {
            (true, Some(last)) => *last + self.gap(),
            _ => now,
        };
        if self.sent.len() < self.max && spaced <= now {
            self.sent.push_back(now);
            Ok(())
        } else if self.sent.len() < self.max {
            Err(spaced)
        } else {
            Err((*self.sent.front().expect("non-empty when full") + self.window).max(spaced))
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
        let mut p = Pacer::spaced(5, Duration::from_secs(1));
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
        // 23 messages at 5/s, evenly spaced: one every 200 ms.
        assert_eq!(*times.last().unwrap(), Duration::from_millis(22 * 200));
        assert!(times.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(200)));
        // Unspaced (connection attempts): bursts up to the limit, then the window.
        let mut b = Pacer::new(3, Duration::from_secs(10));
        let start = Instant::now();
        for _ in 0..3 {
            b.acquire().await;
        }
        assert_eq!(Instant::now(), start);
        b.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
    }
}

/// A weighted sliding window: at most `limit` units (REST request weight) in any
/// `window`, shared by every caller. Exact for the venue's rule, where a token
/// bucket would either exceed the window's total or give up half the throughput.
#[derive(Debug)]
pub struct WeightBudget {
    limit: u32,
    window: Duration,
    spent: tokio::sync::Mutex<VecDeque<(Instant, u32)>>,
}

impl WeightBudget {
    /// `limit` units per `window` (Binance spot: 6000 per minute).
    pub fn new(limit: u32, window: Duration) -> WeightBudget {
        WeightBudget { limit: limit.max(1), window, spent: tokio::sync::Mutex::new(VecDeque::new()) }
    }

    /// Waits until `weight` more units fit, then records them. A weight above the
    /// limit is clamped to it (it would never fit otherwise).
    pub async fn acquire(&self, weight: u32) {
        let weight = weight.min(self.limit);
        let mut spent = self.spent.lock().await;
        loop {
            let now = Instant::now();
            while spent.front().is_some_and(|(t, _)| now.duration_since(*t) >= self.window) {
                spent.pop_front();
            }
            let used: u32 = spent.iter().map(|(_, w)| *w).sum();
            if used + weight <= self.limit {
                spent.push_back((now, weight));
                return;
            }
            // Wait until enough of the oldest entries leave the window.
            let mut freed = 0;
            let mut until = now;
            for (t, w) in spent.iter() {
                freed += w;
                until = *t + self.window;
                if used - freed + weight <= self.limit {
                    break;
                }
            }
            tokio::time::sleep_until(until).await;
        }
    }

    /// Units spent in the current window (`None` while a caller holds the budget).
    pub fn used(&self) -> Option<u32> {
        let spent = self.spent.try_lock().ok()?;
        let now = Instant::now();
        Some(spent.iter().filter(|(t, _)| now.duration_since(*t) < self.window).map(|(_, w)| *w).sum())
    }
}

#[cfg(test)]
mod weight_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn weights_never_exceed_the_window_total() {
        let b = std::sync::Arc::new(WeightBudget::new(300, Duration::from_secs(60)));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let b = b.clone();
            tasks.push(tokio::spawn(async move {
                b.acquire(50).await;
                Instant::now() - start
            }));
        }
        let mut at = Vec::new();
        for t in tasks {
            at.push(t.await.unwrap());
        }
        at.sort();
        for (i, t) in at.iter().enumerate() {
            let in_window = at[i..].iter().take_while(|u| **u - *t < Duration::from_secs(60)).count();
            assert!(in_window * 50 <= 300, "{in_window} requests within a minute from {t:?}");
        }
        // 20 requests of 50 at 300 per minute: 6 per minute, the last in minute 3.
        assert_eq!(*at.last().unwrap(), Duration::from_secs(180));
    }
}
