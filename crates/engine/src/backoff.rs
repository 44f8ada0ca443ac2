//! Reconnect backoff: exponential, capped, jittered, with an optional immediate
//! first retry and an optional attempt limit.
//!
//! Delay for retry `k` (counting from 0, after the optional immediate retry):
//! `capped = min(initial · factor^k, max)`, then a uniform draw in
//! `[capped · (1 − jitter), capped]`. Jitter therefore still applies at the cap
//! (many connections dropped together do not come back in lockstep), and a
//! delay never exceeds `max`. The "immediate" first retry is a uniform draw in
//! `[0, min(initial · jitter, 100 ms)]`, so a pool whose connections all drop
//! at once does not reconnect in one burst, yet recovery stays fast. The
//! actor calls [`Backoff::reset`] once a connection has been stable for
//! [`BackoffConfig::reset_after`], and after any session that reached Active
//! and delivered data: backoff grows only across attempts that fail to
//! connect, authenticate or subscribe (the shared attempt budget still
//! bounds how often a venue sees a connection).

use std::time::Duration;

use crate::entropy::Entropy;

/// Reconnect policy.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// First delay (after the immediate retry, if any).
    pub initial: Duration,
    /// Upper bound of every delay.
    pub max: Duration,
    /// Growth factor per attempt (≥ 1).
    pub factor: f64,
    /// Fraction of the delay drawn at random, in `[0, 1]`.
    pub jitter: f64,
    /// Retry almost at once (within `initial · jitter`, at most
    /// [`IMMEDIATE_JITTER_MAX`]) after a connection drops.
    pub immediate_first: bool,
    /// A connection up this long resets the backoff.
    pub reset_after: Duration,
    /// Give up after this many consecutive failed attempts (`None`: never).
    pub max_attempts: Option<u32>,
}

impl Default for BackoffConfig {
    /// Sane for Binance: 1 s doubling to 60 s, half of it jittered, first retry
    /// immediate, reset after 10 s up, retry forever.
    fn default() -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 2.0,
            jitter: 0.5,
            immediate_first: true,
            reset_after: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

/// The longest an "immediate" retry waits: enough spread for a pool's
/// connections not to reconnect in one burst, short enough that recovery
/// after a lost session is immediate in practice.
pub const IMMEDIATE_JITTER_MAX: Duration = Duration::from_millis(100);

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackoffConfigError {
    /// `factor` below 1 or not finite.
    #[error("backoff factor must be a finite number >= 1, got {0}")]
    Factor(f64),
    /// `jitter` outside `[0, 1]`.
    #[error("backoff jitter must be within [0, 1], got {0}")]
    Jitter(f64),
    /// `initial` greater than `max`.
    #[error("backoff initial delay {initial:?} exceeds the maximum {max:?}")]
    InitialAboveMax {
        /// The initial delay.
        initial: Duration,
        /// The maximum delay.
        max: Duration,
    },
}

impl BackoffConfig {
    /// Checks the invariants the delay computation relies on.
    pub fn validate(&self) -> Result<(), BackoffConfigError> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(BackoffConfigError::Factor(self.factor));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(BackoffConfigError::Jitter(self.jitter));
        }
        if self.initial > self.max {
            return Err(BackoffConfigError::InitialAboveMax { initial: self.initial, max: self.max });
        }
        Ok(())
    }

    /// The un-jittered delay of retry `k` (0-based, excluding the immediate retry).
    pub fn capped(&self, k: u32) -> Duration {
        let grown = self.initial.as_secs_f64() * self.factor.powi(k.min(1000) as i32);
        if !grown.is_finite() || grown >= self.max.as_secs_f64() { self.max } else { Duration::from_secs_f64(grown) }
    }
}

/// The state of one connection's reconnect schedule.
#[derive(Debug, Clone)]
pub struct Backoff {
    cfg: BackoffConfig,
    attempts: u32,
}

impl Backoff {
    /// A fresh schedule. The configuration must be valid ([`BackoffConfig::validate`]).
    pub fn new(cfg: BackoffConfig) -> Result<Backoff, BackoffConfigError> {
        cfg.validate()?;
        Ok(Backoff { cfg, attempts: 0 })
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The policy.
    pub fn config(&self) -> &BackoffConfig {
        &self.cfg
    }

    /// The delay before the next attempt, or `None` when the attempt limit is
    /// reached (the caller then gives up).
    pub fn next_delay(&mut self, entropy: &mut dyn Entropy) -> Option<Duration> {
        if self.cfg.max_attempts.is_some_and(|m| self.attempts >= m) {
            return None;
        }
        let n = self.attempts;
        self.attempts += 1;
        let k = match (self.cfg.immediate_first, n) {
            (true, 0) => {
                let spread = (self.cfg.initial.as_secs_f64() * self.cfg.jitter).min(IMMEDIATE_JITTER_MAX.as_secs_f64());
                return Some(Duration::from_secs_f64(spread * entropy.unit()));
            }
            (true, n) => n - 1,
            (false, n) => n,
        };
        let capped = self.cfg.capped(k).as_secs_f64();
        let low = capped * (1.0 - self.cfg.jitter);
        let d = low + (capped - low) * entropy.unit();
        Some(Duration::from_secs_f64(d.clamp(low, capped)))
    }

    /// Back to the first delay (after a stable connection).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::Seeded;
    use proptest::prelude::*;

    #[test]
    fn default_schedule_starts_immediately_then_doubles_with_jitter() {
        let mut b = Backoff::new(BackoffConfig::default()).unwrap();
        let mut e = Seeded::new(1);
        let d0 = b.next_delay(&mut e).unwrap();
        assert!(d0 <= IMMEDIATE_JITTER_MAX, "first retry within min(initial·jitter, 100 ms): {d0:?}");
        let d1 = b.next_delay(&mut e).unwrap();
        assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1), "{d1:?}");
        let d2 = b.next_delay(&mut e).unwrap();
        assert!(d2 >= Duration::from_secs(1) && d2 <= Duration::from_secs(2), "{d2:?}");
        b.reset();
        assert!(b.next_delay(&mut e).unwrap() <= IMMEDIATE_JITTER_MAX);
    }

    #[test]
    fn invalid_configs_are_refused() {
        let bad = |f: fn(&mut BackoffConfig)| {
            let mut c = BackoffConfig::default();
            f(&mut c);
            Backoff::new(c).unwrap_err()
        };
        assert_eq!(bad(|c| c.factor = 0.5), BackoffConfigError::Factor(0.5));
        assert!(matches!(bad(|c| c.factor = f64::NAN), BackoffConfigError::Factor(_)));
        assert_eq!(bad(|c| c.jitter = 1.5), BackoffConfigError::Jitter(1.5));
        assert!(matches!(bad(|c| c.initial = Duration::from_secs(120)), BackoffConfigError::InitialAboveMax { .. }));
    }

    /// Edge cases kept as named regressions: degenerate factor, full jitter,
    /// initial == max, zero attempts, huge attempt counts.
    #[test]
    fn edge_case_regressions() {
        let mut e = Seeded::new(9);
        let flat = BackoffConfig { factor: 1.0, jitter: 0.0, immediate_first: false, ..BackoffConfig::default() };
        let mut b = Backoff::new(flat).unwrap();
        for _ in 0..5 {
            assert_eq!(b.next_delay(&mut e), Some(Duration::from_secs(1)));
        }
        let full = BackoffConfig { jitter: 1.0, immediate_first: false, ..BackoffConfig::default() };
        let mut b = Backoff::new(full).unwrap();
        for _ in 0..50 {
            assert!(b.next_delay(&mut e).unwrap() <= Duration::from_secs(60));
        }
        let pinned =
            BackoffConfig { initial: Duration::from_secs(5), max: Duration::from_secs(5), ..BackoffConfig::default() };
        let mut b = Backoff::new(pinned).unwrap();
        b.next_delay(&mut e);
        for _ in 0..10 {
            let d = b.next_delay(&mut e).unwrap();
            assert!(d >= Duration::from_millis(2500) && d <= Duration::from_secs(5), "{d:?}");
        }
        let none = BackoffConfig { max_attempts: Some(0), ..BackoffConfig::default() };
        assert_eq!(Backoff::new(none).unwrap().next_delay(&mut e), None);
        let cfg = BackoffConfig::default();
        assert_eq!(cfg.capped(u32::MAX), cfg.max, "no overflow at huge attempt counts");
    }

    fn config() -> impl Strategy<Value = BackoffConfig> {
        (1u64..5_000, 1u64..120_000, 1.0f64..4.0, 0.0f64..=1.0, any::<bool>(), proptest::option::of(0u32..20)).prop_map(
            |(initial_ms, extra_ms, factor, jitter, immediate_first, max_attempts)| BackoffConfig {
                initial: Duration::from_millis(initial_ms),
                max: Duration::from_millis(initial_ms + extra_ms),
                factor,
                jitter,
                immediate_first,
                reset_after: Duration::from_secs(10),
                max_attempts,
            },
        )
    }

    proptest! {
        /// Every delay lies in `[capped·(1−jitter), capped]`, never above `max`,
        /// the attempt limit is exact, and a reset starts over.
        #[test]
        fn delays_obey_their_bounds(cfg in config(), seed in any::<u64>(), n in 1usize..60) {
            let mut b = Backoff::new(cfg.clone()).unwrap();
            let mut e = Seeded::new(seed);
            let mut given = 0u32;
            for i in 0..n {
                match b.next_delay(&mut e) {
                    None => {
                        prop_assert_eq!(Some(given), cfg.max_attempts);
                        break;
                    }
                    Some(d) => {
                        given += 1;
                        prop_assert!(d <= cfg.max);
                        if cfg.immediate_first && i == 0 {
                            let spread = (cfg.initial.as_secs_f64() * cfg.jitter).min(IMMEDIATE_JITTER_MAX.as_secs_f64());
                            prop_assert!(d.as_secs_f64() <= spread + 1e-9);
                            continue;
                        }
                        let k = if cfg.immediate_first { i as u32 - 1 } else { i as u32 };
                        let cap = cfg.capped(k).as_secs_f64();
                        let low = cap * (1.0 - cfg.jitter);
                        let s = d.as_secs_f64();
                        prop_assert!(s >= low - 1e-9 && s <= cap + 1e-9, "retry {} delay {} outside [{}, {}]", i, s, low, cap);
                    }
                }
            }
            if let Some(m) = cfg.max_attempts {
                prop_assert!(given <= m);
            }
            b.reset();
            prop_assert_eq!(b.attempts(), 0);
            if cfg.max_attempts != Some(0) {
                let first = b.next_delay(&mut e).unwrap();
                prop_assert!(first <= cfg.initial);
            }
        }

        /// Without jitter the schedule is monotone and reaches the cap.
        #[test]
        fn without_jitter_delays_grow_to_the_cap(cfg in config(), seed in any::<u64>()) {
            let cfg = BackoffConfig { jitter: 0.0, max_attempts: None, immediate_first: false, factor: cfg.factor.max(1.5), ..cfg };
            let mut b = Backoff::new(cfg.clone()).unwrap();
            let mut e = Seeded::new(seed);
            let mut prev = Duration::ZERO;
            for _ in 0..200 {
                let d = b.next_delay(&mut e).unwrap();
                prop_assert!(d >= prev);
                prev = d;
            }
            prop_assert_eq!(prev, cfg.max);
        }
    }
}
