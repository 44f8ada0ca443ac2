//! `--shard K/N`: which collector carries which subscription.

use std::fmt;
use std::str::FromStr;

/// 64-bit FNV-1a: a stable hash (the same on every machine, build and run,
/// unlike the standard library's randomly keyed `RandomState`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Shard `k` of `n`: a deterministic partition of a subscription universe.
///
/// An item (a stream `binance:spot:btcusdt@trade`, a book
/// `binance:spot:book:BTCUSDT`; see [`Shard::stream_key`] and
/// [`Shard::book_key`]) belongs to shard `fnv1a64(key) % n`. Every item
/// belongs to exactly one shard, so `N` collectors started with `0/N` …
/// `N-1/N` on the same feeds file cover it with no overlap, and adding an item
/// never moves the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    k: u32,
    n: u32,
}

impl Shard {
    /// The whole universe (`0/1`).
    pub const ALL: Shard = Shard { k: 0, n: 1 };

    /// Shard `k` of `n`; `None` unless `n >= 1` and `k < n`.
    pub fn new(k: u32, n: u32) -> Option<Shard> {
        (n >= 1 && k < n).then_some(Shard { k, n })
    }

    /// This shard's index.
    pub fn index(self) -> u32 {
        self.k
    }

    /// The number of shards.
    pub fn count(self) -> u32 {
        self.n
    }

    /// The shard an item key belongs to.
    pub fn of(key: &str, n: u32) -> u32 {
        (fnv1a64(key.as_bytes()) % u64::from(n.max(1))) as u32
    }

    /// Whether this shard carries the item `key`.
    pub fn owns(self, key: &str) -> bool {
        Shard::of(key, self.n) == self.k
    }

    /// The key of a stream: `venue:market:stream`, e.g. `binance:spot:btcusdt@trade`.
    pub fn stream_key(venue: &str, market: &str, stream: &str) -> String {
        format!("{venue}:{market}:{stream}")
    }

    /// The key of a local book: `venue:market:book:SYMBOL`.
    pub fn book_key(venue: &str, market: &str, symbol: &str) -> String {
        format!("{venue}:{market}:book:{symbol}")
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `K/N`, e.g. `0/2`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("invalid shard {s:?}: expected K/N with 0 <= K < N, e.g. 0/2");
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let (k, n) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        Shard::new(k, n).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shards_partition_a_universe() {
        let keys: Vec<String> =
            (0..5000).map(|i| Shard::stream_key("binance", "spot", &format!("s{i}@trade"))).collect();
        for n in 1..=7u32 {
            let mut owners = vec![0u32; keys.len()];
            for k in 0..n {
                let s = Shard::new(k, n).expect("valid");
                for (i, key) in keys.iter().enumerate() {
                    owners[i] += u32::from(s.owns(key));
                }
            }
            assert!(owners.iter().all(|&c| c == 1), "n={n}: every key in exactly one shard");
        }
        // Roughly even: no shard of 4 holds less than a fifth of 5000.
        for k in 0..4 {
            let s = Shard::new(k, 4).expect("valid");
            assert!(keys.iter().filter(|key| s.owns(key)).count() > 1000);
        }
    }

    #[test]
    fn shards_parse() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { k: 1, n: 3 }));
        assert_eq!(" 0 / 1 ".parse::<Shard>(), Ok(Shard::ALL));
        for bad in ["3/3", "0/0", "1", "a/b", "-1/2", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(Shard::new(2, 5).expect("valid").to_string(), "2/5");
    }
}
