//! Deribit's credit system (PROTOCOLS.md §6.5; docs.deribit.com
//! `articles/rate-limits`): every request spends credits from a leaky bucket
//! that refills continuously; a request that finds too few gets `10028
//! too_many_requests` and the session is terminated. Three buckets per
//! connection: subscribe methods, other non-matching-engine requests, and
//! matching-engine requests (buy, sell, edit, cancel...). Sizes are
//! `Limits::deribit` fields.

use tokio::time::Instant;

use crate::config::DeribitLimits;

/// Which bucket a method draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// `public/subscribe`, `private/subscribe`.
    Subscribe,
    /// `private/buy`, `sell`, `edit`, `cancel`, `cancel_all*`.
    Matching,
    /// Everything else.
    Other,
}

/// The bucket of `method`.
pub(crate) fn class(method: &str) -> Class {
    match method {
        "public/subscribe" | "private/subscribe" => Class::Subscribe,
        "private/buy"
        | "private/sell"
        | "private/edit"
        | "private/cancel"
        | "private/cancel_all"
        | "private/cancel_all_by_instrument" => Class::Matching,
        _ => Class::Other,
    }
}

/// One leaky bucket, in credits.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    left: f64,
    at: Option<Instant>,
}

impl Bucket {
    /// Refills up to `pool` at `per_sec`, then takes `cost` if there is that much.
    fn take(&mut self, cost: u64, pool: u64, per_sec: u64, now: Instant) -> bool {
        let left = match self.at {
            None => pool as f64,
            Some(t) => (self.left + now.duration_since(t).as_secs_f64() * per_sec as f64).min(pool as f64),
        };
        self.at = Some(now);
        if left + 1e-9 < cost as f64 {
            self.left = left;
            return false;
        }
        self.left = left - cost as f64;
        true
    }
}

/// A connection's buckets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Credits {
    subscribe: Bucket,
    other: Bucket,
    matching: Bucket,
    /// The admin fault: the next request finds no credits.
    pub exhausted: bool,
}

impl Default for Credits {
    fn default() -> Credits {
        let b = Bucket { left: 0.0, at: None };
        Credits { subscribe: b, other: b, matching: b, exhausted: false }
    }
}

impl Credits {
    /// Charges one request of `class`; `false` when the bucket is empty.
    pub(crate) fn charge(&mut self, class: Class, l: &DeribitLimits, now: Instant) -> bool {
        if std::mem::take(&mut self.exhausted) {
            return false;
        }
        match class {
            Class::Subscribe => {
                self.subscribe.take(l.subscribe_cost, l.subscribe_pool, l.subscribe_refill_per_sec, now)
            }
            Class::Other => self.other.take(l.request_cost, l.request_pool, l.request_refill_per_sec, now),
            // Matching-engine limits are in requests: a burst and a rate.
            Class::Matching => self.matching.take(1, l.matching_burst, l.matching_per_sec, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_pool_then_refills_at_its_rate() {
        let l = DeribitLimits::default();
        let mut c = Credits::default();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(c.charge(Class::Subscribe, &l, t0), "subscribe {i} within the 30 000 pool");
        }
        assert!(!c.charge(Class::Subscribe, &l, t0), "the 11th finds 0 credits");
        assert!(c.charge(Class::Subscribe, &l, t0 + Duration::from_millis(300)), "3000 credits back after 0.3 s");
        for _ in 0..100 {
            assert!(c.charge(Class::Other, &l, t0));
        }
        assert!(!c.charge(Class::Other, &l, t0));
        for _ in 0..20 {
            assert!(c.charge(Class::Matching, &l, t0));
        }
        assert!(!c.charge(Class::Matching, &l, t0));
        c.exhausted = true;
        assert!(!c.charge(Class::Other, &l, t0 + Duration::from_secs(60)), "the fault empties the next request");
        assert!(c.charge(Class::Other, &l, t0 + Duration::from_secs(60)));
        assert_eq!(class("private/edit"), Class::Matching);
        assert_eq!(class("public/get_time"), Class::Other);
    }
}
