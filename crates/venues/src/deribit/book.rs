//! Deribit local order-book rules (PROTOCOLS.md §6.7; docs.deribit.com
//! `subscriptions/orderbook/bookinstrument_nameinterval`).
//!
//! A `book.{instrument}.{interval}` subscription starts with a `snapshot`
//! carrying the book's `change_id`; every `change` then names the
//! `prev_change_id` it follows. Change ids are large and not contiguous:
//! only the equality `prev_change_id == last change_id` says nothing was
//! lost. [`DeribitSequencing`] applies a change that continues the book's
//! last `change_id`, drops a repeat of it, and asks for recovery on
//! anything else. Recovery is a new snapshot, which the venue sends only
//! for a new subscription: unsubscribe and subscribe again
//! (`Recovery::Resubscribe`; subscribing an already subscribed channel
//! does not resend one). `public/get_order_book` ([`snapshot_request`])
//! gives a REST snapshot with its `change_id` too, decoded by
//! [`decode_rest_snapshot`].
//!
//! [`snapshot_request`]: super::snapshot_request

use ferrofeed_model::event::{BookDelta, Event, EventKind, Venue};
use ferrofeed_model::sequencing::{BookSequencing, Verdict};

use super::endpoints::Market;
use super::normalize::{DecodeError, book_snapshot, ms_to_ns, parse};
use super::wire::{BookW, Envelope};

/// Deribit: the `change_id` chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeribitSequencing;

impl BookSequencing for DeribitSequencing {
    fn bridge(&self, snapshot_id: u64, d: &BookDelta) -> Verdict {
        self.follow(snapshot_id, d)
    }

    fn follow(&self, last: u64, d: &BookDelta) -> Verdict {
        if d.prev_update_id == Some(last) && d.last_update_id != last {
            Verdict::Accept
        } else if d.last_update_id == last {
            Verdict::Suppress
        } else {
            Verdict::Recover
        }
    }
}

/// The rule, for `BookSync::new`.
pub fn sequencing() -> &'static dyn BookSequencing {
    &DeribitSequencing
}

/// The `book_snapshot` of a `public/get_order_book` answer (the JSON-RPC
/// envelope with its `result`), received at `received_ns`.
pub fn decode_rest_snapshot(market: Market, body: &str, received_ns: i64) -> Result<Event, DecodeError> {
    const W: &str = "public/get_order_book";
    let invalid = |reason: String| DecodeError::Invalid { what: W, reason, payload: body.to_owned() };
    let env: Envelope<'_> =
        parse(body).map_err(|reason| DecodeError::Malformed { reason, payload: body.to_owned() })?;
    if let Some(e) = env.error {
        return Err(invalid(format!("error {} {}", e.code, e.message)));
    }
    let result = env.result.ok_or_else(|| invalid("no result".into()))?;
    let w: BookW<'_> = parse(result.get()).map_err(invalid)?;
    let ts = ms_to_ns(w.timestamp).ok_or_else(|| invalid(format!("timestamp {} out of range", w.timestamp)))?;
    Ok(Event {
        kind: EventKind::BookSnapshot(book_snapshot(&w)),
        venue: Venue::Deribit,
        market: market.market_type(),
        symbol: Some(w.instrument_name.to_ascii_uppercase()),
        exchange_ts: Some(ts),
        receive_ts: received_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: u64, prev: u64) -> BookDelta {
        BookDelta { first_update_id: id, last_update_id: id, prev_update_id: Some(prev), bids: vec![], asks: vec![] }
    }

    #[test]
    fn the_chain_continues_a_repeat_is_dropped_anything_else_recovers() {
        let s = DeribitSequencing;
        assert_eq!(s.follow(100, &change(180, 100)), Verdict::Accept);
        assert_eq!(s.follow(180, &change(180, 100)), Verdict::Suppress);
        assert_eq!(s.follow(180, &change(260, 200)), Verdict::Recover, "a change was lost");
        assert_eq!(s.follow(180, &change(150, 120)), Verdict::Recover);
        let no_prev = BookDelta { prev_update_id: None, ..change(200, 0) };
        assert_eq!(s.follow(180, &no_prev), Verdict::Recover);
        assert_eq!(s.bridge(100, &change(180, 100)), Verdict::Accept);
        assert_eq!(s.bridge(100, &change(180, 90)), Verdict::Recover);
    }

    #[test]
    fn rest_snapshots_decode_with_their_change_id() {
        let body = r#"{"jsonrpc":"2.0","id":5,"result":{"timestamp":1626993722319,"stats":{"volume":null},"instrument_name":"BTC-PERPETUAL","change_id":33195894164,"bids":[[89532.5,254900.0]],"asks":[[89533.0,91570.0],[89533.5,10000.0]],"mark_price":89532.8},"usIn":1,"usOut":2,"usDiff":1,"testnet":false}"#;
        let e = decode_rest_snapshot(Market::Inverse, body, 9).unwrap();
        let EventKind::BookSnapshot(b) = &e.kind else { panic!("{e:?}") };
        assert_eq!(b.last_update_id, 33_195_894_164);
        assert_eq!((b.bids.len(), b.asks.len()), (1, 2));
        assert_eq!(b.asks[1].price.to_string(), "89533.5");
        assert_eq!((e.symbol.as_deref(), e.exchange_ts), (Some("BTC-PERPETUAL"), Some(1_626_993_722_319_000_000)));
        let err = r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32602,"message":"Invalid params"}}"#;
        assert_eq!(decode_rest_snapshot(Market::Inverse, err, 9).unwrap_err().payload(), err);
    }
}
