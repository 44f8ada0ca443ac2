//! What a Binance market keeps besides the generator (`HubState::venue`):
//! the margin listenTokens (as SHA-256 digests), the wallets of the margin
//! scopes, what the core `Order` cannot say about an order (its scope, and
//! that it is `LIMIT_MAKER`), the `ORDERS` counters of each account, and when
//! the next token subscription runs out.
//!
//! Everything here is bounded: tokens per account, wallets per (account,
//! listed scope), order facts pruned to the orders accounts still keep.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::account::{Account, Balance, Scope};
use crate::config::OrderRateLimit;
use crate::hub::HubState;

/// Live listenTokens kept per account; creating one more drops the one that
/// runs out first.
const TOKENS_PER_ACCOUNT: usize = 64;

/// Order facts kept before the ones of forgotten orders are pruned.
const META_PRUNE_AT: usize = 8192;

/// An issued listenToken (the token itself is never kept, only its digest).
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub account: usize,
    pub scope: Scope,
    pub expires: Instant,
    /// `expirationTime` as the venue wrote it (ms since the epoch).
    pub expiration_ms: u64,
}

/// What an order is beyond the core `Order`, for orders that are not plain
/// orders of the market's own scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub scope: Scope,
    /// `LIMIT_MAKER` (post-only) rather than `LIMIT`.
    pub maker: bool,
}

/// Binance's per-market state.
#[derive(Default)]
pub(crate) struct BinanceState {
    tokens: HashMap<[u8; 32], Token>,
    /// Balances of the margin scopes, by (account, scope).
    wallets: HashMap<(usize, Scope), BTreeMap<String, Balance>>,
    meta: HashMap<u64, Meta>,
    /// Per account: (interval number, orders counted) for each configured limit.
    counts: HashMap<usize, Vec<(u64, u32)>>,
    /// The earliest expiry of a token subscription, if any may be live.
    pub next_expiry: Option<Instant>,
}

impl std::fmt::Debug for BinanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Counts only: tokens are secrets (and only their digests are here anyway).
        f.debug_struct("BinanceState")
            .field("tokens", &self.tokens.len())
            .field("wallets", &self.wallets.len())
            .field("meta", &self.meta.len())
            .finish_non_exhaustive()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The market's Binance state (`None` only if the venue slot holds another
/// venue's state, which the registry never does).
pub(crate) fn get(venue: &(dyn Any + Send)) -> Option<&BinanceState> {
    venue.downcast_ref()
}

pub(crate) fn get_mut(venue: &mut (dyn Any + Send)) -> Option<&mut BinanceState> {
    venue.downcast_mut()
}

impl BinanceState {
    /// Keeps a new token (dropping expired ones, and the account's
    /// soonest-expiring one when it holds too many).
    pub(crate) fn add_token(&mut self, token: &str, t: Token) {
        let now = Instant::now();
        self.tokens.retain(|_, k| k.expires > now);
        let mine: Vec<([u8; 32], Instant)> =
            self.tokens.iter().filter(|(_, k)| k.account == t.account).map(|(d, k)| (*d, k.expires)).collect();
        if mine.len() >= TOKENS_PER_ACCOUNT
            && let Some((d, _)) = mine.iter().min_by_key(|(_, e)| *e)
        {
            self.tokens.remove(d);
        }
        self.tokens.insert(digest(token), t);
    }

    /// The live token `token`, if any.
    pub(crate) fn token(&self, token: &str) -> Option<&Token> {
        self.tokens.get(&digest(token)).filter(|t| t.expires > Instant::now())
    }

    /// Drops expired tokens.
    pub(crate) fn prune_tokens(&mut self, now: Instant) {
        self.tokens.retain(|_, k| k.expires > now);
    }

    /// The facts of order `id` (`None`: a plain order of the market's scope).
    pub(crate) fn meta(&self, id: u64) -> Option<&Meta> {
        self.meta.get(&id)
    }

    pub(crate) fn set_meta(&mut self, id: u64, m: Meta, accounts: &[Account]) {
        if self.meta.len() >= META_PRUNE_AT {
            self.meta.retain(|id, _| {
                accounts.iter().any(|a| a.open.contains_key(id) || a.history.iter().any(|o| o.id == *id))
            });
        }
        self.meta.insert(id, m);
    }

    /// The current counts of `acct` against `limits` at `now_ms`.
    pub(crate) fn order_counts(&mut self, acct: usize, limits: &[OrderRateLimit], now_ms: u64) -> Vec<u32> {
        let c = self.counts_of(acct, limits, now_ms);
        c.iter().map(|(_, n)| *n).collect()
    }

    /// Counts one new order of `acct`; `Err(i)` (nothing counted) when limit
    /// `i` is already reached in its current interval.
    pub(crate) fn count_order(&mut self, acct: usize, limits: &[OrderRateLimit], now_ms: u64) -> Result<(), usize> {
        let c = self.counts_of(acct, limits, now_ms);
        if let Some(i) = c.iter().zip(limits).position(|((_, n), l)| *n >= l.limit) {
            return Err(i);
        }
        for (_, n) in c.iter_mut() {
            *n += 1;
        }
        Ok(())
    }

    fn counts_of(&mut self, acct: usize, limits: &[OrderRateLimit], now_ms: u64) -> &mut Vec<(u64, u32)> {
        let c = self.counts.entry(acct).or_default();
        c.resize(limits.len(), (0, 0));
        for ((idx, n), l) in c.iter_mut().zip(limits) {
            let cur = now_ms / (l.window.as_millis() as u64).max(1);
            if *idx != cur {
                *idx = cur;
                *n = 0;
            }
        }
        c
    }
}

/// The starting balances of a margin scope: the account's starting balances
/// (cross margin), or those of the pair's two assets (isolated margin).
fn initial_wallet(a: &Account, scope: &Scope, pair: Option<(&str, &str)>) -> BTreeMap<String, Balance> {
    a.spec
        .balances
        .iter()
        .filter(|(asset, _)| match (scope, pair) {
            (Scope::Isolated(_), Some((b, q))) => asset == b || asset == q,
            (Scope::Isolated(_), None) => false,
            _ => true,
        })
        .filter_map(|(asset, v)| {
            let free = crate::account::parse_dec(v, crate::account::AMT).ok()?;
            Some((asset.clone(), Balance { free, locked: 0 }))
        })
        .collect()
}

/// Whether `scope` keeps its own wallet here (the margin scopes of spot).
pub(crate) fn own_wallet(scope: &Scope) -> bool {
    matches!(scope, Scope::Margin | Scope::Isolated(_))
}

/// Runs `f` on account `acct` with the balances of `scope` in place of its
/// own (spot) balances; the market's own scopes use the account as is.
pub(crate) fn with_wallet<R>(st: &mut HubState, acct: usize, scope: &Scope, f: impl FnOnce(&mut Account) -> R) -> R {
    let pair = match scope {
        Scope::Isolated(s) => st.market.symbol(s).map(|x| (x.spec.base.clone(), x.spec.quote.clone())),
        _ => None,
    };
    let HubState { accounts, venue, .. } = st;
    // `acct` was found under the same lock (as everywhere in the order code).
    let a = &mut accounts.list[acct];
    if !own_wallet(scope) {
        return f(a);
    }
    let Some(bs) = get_mut(venue.as_mut()) else { return f(a) };
    let pair_ref = pair.as_ref().map(|(b, q)| (b.as_str(), q.as_str()));
    let wallet = bs.wallets.entry((acct, scope.clone())).or_insert_with(|| initial_wallet(a, scope, pair_ref));
    std::mem::swap(&mut a.balances, wallet);
    let r = f(a);
    std::mem::swap(&mut a.balances, wallet);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn order_counts_reset_per_fixed_interval_and_refuse_at_the_limit() {
        let mut s = BinanceState::default();
        let limits = [OrderRateLimit::new(10, 2), OrderRateLimit::new(86_400, 3)];
        assert_eq!(s.count_order(0, &limits, 1_000), Ok(()));
        assert_eq!(s.count_order(0, &limits, 9_999), Ok(()));
        assert_eq!(s.count_order(0, &limits, 9_999), Err(0), "2 per 10 s");
        assert_eq!(s.order_counts(0, &limits, 9_999), vec![2, 2]);
        assert_eq!(s.count_order(1, &limits, 9_999), Ok(()), "per account");
        assert_eq!(s.count_order(0, &limits, 10_000), Ok(()), "a new 10 s interval");
        assert_eq!(s.count_order(0, &limits, 10_001), Err(1), "3 per day");
        assert_eq!(s.order_counts(0, &limits, 86_400_000), vec![0, 0]);
    }

    #[test]
    fn tokens_are_found_by_text_and_run_out() {
        let mut s = BinanceState::default();
        let t = Token {
            account: 0,
            scope: Scope::Margin,
            expires: Instant::now() + Duration::from_secs(60),
            expiration_ms: 1,
        };
        s.add_token("abc+/", t);
        assert!(s.token("abc+/").is_some());
        assert!(s.token("abc").is_none());
        assert!(!format!("{s:?}").contains("abc"));
        s.prune_tokens(Instant::now() + Duration::from_secs(61));
        assert!(s.token("abc+/").is_none());
    }
}
