//! A level-2 order book: one quantity per price, exact decimals.

use std::collections::BTreeMap;

use ferrofeed_model::Decimal;
use ferrofeed_model::event::Level;

/// One side of a book. `bid` says which way "better" goes (higher for bids,
/// lower for asks).
pub trait BookSide: Default + std::fmt::Debug + Clone {
    /// Sets the quantity at `price`; zero removes the level.
    fn set(&mut self, bid: bool, price: Decimal, qty: Decimal);
    /// The best level.
    fn best(&self, bid: bool) -> Option<Level>;
    /// The best `n` levels, best first.
    fn top(&self, bid: bool, n: usize) -> Vec<Level>;
    /// Number of levels.
    fn len(&self) -> usize;
    /// Whether the side has no level.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Removes every level.
    fn clear(&mut self);
    /// Replaces the side with `levels` (any order; zero quantities skipped).
    fn load(&mut self, bid: bool, levels: &[Level]) {
        self.clear();
        for l in levels {
            self.set(bid, l.price, l.qty);
        }
    }
    /// Removes the worst levels until at most `keep` remain; returns how many
    /// were removed.
    fn truncate(&mut self, bid: bool, keep: usize) -> usize;
}

/// A side as a sorted vector with the best level at the end, so changes near
/// the top (most of them) move few elements.
#[derive(Debug, Clone, Default)]
pub struct VecSide {
    // Bids ascending, asks descending: best last.
    levels: Vec<(Decimal, Decimal)>,
}

impl VecSide {
    fn find(&self, bid: bool, price: Decimal) -> Result<usize, usize> {
        if bid {
            self.levels.binary_search_by(|(p, _)| p.cmp(&price))
        } else {
            self.levels.binary_search_by(|(p, _)| price.cmp(p))
        }
    }
}

impl BookSide for VecSide {
    fn set(&mut self, bid: bool, price: Decimal, qty: Decimal) {
        match (self.find(bid, price), qty.is_zero()) {
            (Ok(i), true) => {
                self.levels.remove(i);
            }
            (Ok(i), false) => self.levels[i].1 = qty,
            (Err(_), true) => {}
            (Err(i), false) => self.levels.insert(i, (price, qty)),
        }
    }

    fn load(&mut self, bid: bool, levels: &[Level]) {
        // Sort once instead of inserting one by one (a best-first snapshot
        // would insert every level at the front).
        self.levels.clear();
        self.levels.extend(levels.iter().filter(|l| !l.qty.is_zero()).map(|l| (l.price, l.qty)));
        if bid {
            self.levels.sort_by_key(|l| l.0);
        } else {
            self.levels.sort_by_key(|l| std::cmp::Reverse(l.0));
        }
        // A repeated price keeps its last quantity, as repeated `set`s would.
        let mut out: Vec<(Decimal, Decimal)> = Vec::with_capacity(self.levels.len());
        for (p, q) in self.levels.drain(..) {
            match out.last_mut() {
                Some(last) if last.0 == p => last.1 = q,
                _ => out.push((p, q)),
            }
        }
        self.levels = out;
    }

    fn best(&self, _bid: bool) -> Option<Level> {
        self.levels.last().map(|&(price, qty)| Level { price, qty })
    }

    fn top(&self, _bid: bool, n: usize) -> Vec<Level> {
        self.levels.iter().rev().take(n).map(|&(price, qty)| Level { price, qty }).collect()
    }

    fn len(&self) -> usize {
        self.levels.len()
    }

    fn clear(&mut self) {
        self.levels.clear();
    }

    fn truncate(&mut self, _bid: bool, keep: usize) -> usize {
        let extra = self.levels.len().saturating_sub(keep);
        self.levels.drain(..extra);
        extra
    }
}

/// A side as a `BTreeMap` keyed by price.
#[derive(Debug, Clone, Default)]
pub struct TreeSide {
    levels: BTreeMap<Decimal, Decimal>,
}

impl BookSide for TreeSide {
    fn set(&mut self, _bid: bool, price: Decimal, qty: Decimal) {
        if qty.is_zero() {
            self.levels.remove(&price);
        } else {
            self.levels.insert(price, qty);
        }
    }

    fn best(&self, bid: bool) -> Option<Level> {
        let l = if bid { self.levels.iter().next_back() } else { self.levels.iter().next() };
        l.map(|(&price, &qty)| Level { price, qty })
    }

    fn top(&self, bid: bool, n: usize) -> Vec<Level> {
        let f = |(&price, &qty): (&Decimal, &Decimal)| Level { price, qty };
        if bid {
            self.levels.iter().rev().take(n).map(f).collect()
        } else {
            self.levels.iter().take(n).map(f).collect()
        }
    }

    fn len(&self) -> usize {
        self.levels.len()
    }

    fn clear(&mut self) {
        self.levels.clear();
    }

    fn truncate(&mut self, bid: bool, keep: usize) -> usize {
        let mut removed = 0;
        while self.levels.len() > keep {
            if bid {
                self.levels.pop_first()
            } else {
                self.levels.pop_last()
            };
            removed += 1;
        }
        removed
    }
}

/// A level-2 book at an update id.
#[derive(Debug, Clone, Default)]
pub struct L2Book<S: BookSide = VecSide> {
    bids: S,
    asks: S,
    last_update_id: u64,
}

impl<S: BookSide> L2Book<S> {
    /// An empty book.
    pub fn new() -> L2Book<S> {
        L2Book { bids: S::default(), asks: S::default(), last_update_id: 0 }
    }

    /// Replaces the content with a snapshot at `last_update_id`.
    pub fn load(&mut self, last_update_id: u64, bids: &[Level], asks: &[Level]) {
        self.bids.load(true, bids);
        self.asks.load(false, asks);
        self.last_update_id = last_update_id;
    }

    /// Applies absolute quantities (zero removes) and moves to `last_update_id`.
    pub fn apply(&mut self, last_update_id: u64, bids: &[Level], asks: &[Level]) {
        for l in bids {
            self.bids.set(true, l.price, l.qty);
        }
        for l in asks {
            self.asks.set(false, l.price, l.qty);
        }
        self.last_update_id = last_update_id;
    }

    /// Removes the worst levels beyond `keep` per side; returns how many.
    pub fn truncate(&mut self, keep: usize) -> usize {
        self.bids.truncate(true, keep) + self.asks.truncate(false, keep)
    }

    /// The update id of the last change applied.
    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    /// The best bid.
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best(true)
    }

    /// The best ask.
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best(false)
    }

    /// The best `n` bids, best first.
    pub fn bids(&self, n: usize) -> Vec<Level> {
        self.bids.top(true, n)
    }

    /// The best `n` asks, best first.
    pub fn asks(&self, n: usize) -> Vec<Level> {
        self.asks.top(false, n)
    }

    /// Levels per side: (bids, asks).
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// Clears both sides and the update id.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.last_update_id = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn l(p: &str, q: &str) -> Level {
        Level { price: d(p), qty: d(q) }
    }

    fn exercise<S: BookSide>() {
        let mut b: L2Book<S> = L2Book::new();
        b.load(
            10,
            &[l("100", "1"), l("99.5", "2"), l("101", "0")],
            &[l("102", "3"), l("101.5", "9"), l("101.50", "4")],
        );
        assert_eq!(b.depth(), (2, 2));
        assert_eq!(b.best_bid(), Some(l("100", "1")));
        assert_eq!(b.best_ask(), Some(l("101.5", "4")));
        b.apply(11, &[l("100.5", "5"), l("99.5", "0"), l("98", "0")], &[l("101.5", "0.000")]);
        assert_eq!(b.bids(10), vec![l("100.5", "5"), l("100", "1")]);
        assert_eq!(b.asks(10), vec![l("102", "3")]);
        assert_eq!(b.last_update_id(), 11);
        // Equal prices at different scales are one level.
        b.apply(12, &[l("100.50", "6")], &[]);
        assert_eq!(b.depth(), (2, 1));
        assert_eq!(b.best_bid().map(|x| x.qty), Some(d("6")));
        b.apply(13, &[l("97", "1"), l("96", "1")], &[l("103", "1"), l("104", "1")]);
        assert_eq!(b.truncate(2), 3);
        assert_eq!(b.bids(9).last().map(|x| x.price), Some(d("100")));
        assert_eq!(b.asks(9).last().map(|x| x.price), Some(d("103")));
    }

    #[test]
    fn vec_side_keeps_order_and_removes_zero_levels() {
        exercise::<VecSide>();
    }

    #[test]
    fn tree_side_keeps_order_and_removes_zero_levels() {
        exercise::<TreeSide>();
    }
}
