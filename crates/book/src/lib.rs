//! # ferrofeed-book
//!
//! Local order books that equal the venue's or say loudly that they do not.
//!
//! # Layout
//!
//! - `l2`: [`L2Book`], price levels as exact decimals, generic over the side
//!   storage ([`VecSide`], the default, chosen by `benches/book.rs`, or
//!   [`TreeSide`]).
//! - `sync`: [`BookSync`], the sync state machine for one instrument: it
//!   buffers diffs (bounded), takes a REST snapshot, bridges it with the venue's
//!   [`BookSequencing`] rule, applies diffs, and on any gap drops the book and
//!   asks for a new snapshot. It never does I/O: it says what it needs
//!   ([`SyncEvent::NeedSnapshot`]) and the caller fetches.
//!
//! # Quick start
//!
//! ```
//! use ferrofeed_book::L2Book;
//! use ferrofeed_model::event::Level;
//!
//! let lv = |p: &str, q: &str| Level { price: p.parse().unwrap(), qty: q.parse().unwrap() };
//! let mut book: L2Book = L2Book::new();
//! // A snapshot at update 100, then a diff: absolute quantities, zero removes.
//! book.load(100, &[lv("99.5", "2"), lv("99.0", "1")], &[lv("100.5", "3")]);
//! book.apply(101, &[lv("99.5", "0")], &[lv("100.0", "1")]);
//! assert_eq!(book.best_bid(), Some(lv("99.0", "1")));
//! assert_eq!(book.asks(5), vec![lv("100.0", "1"), lv("100.5", "3")]);
//! assert_eq!(book.last_update_id(), 101);
//! ```
//!
//! Kept in sync against a live venue, a book comes from [`BookSync`] (or,
//! with sockets and snapshots handled, from `ferrofeed::books::Books`).
//!
//! **Invariant:** no book is published while it is out of sync. A caller only
//! sees the book through [`SyncEvent::Synced`] and [`SyncEvent::Applied`], and
//! [`BookSync::book`] returns `None` unless the book is in sync.
//!
//! [`BookSequencing`]: ferrofeed_model::sequencing::BookSequencing

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, missing_docs)]

pub mod l2;
pub mod sync;

pub use l2::{BookSide, L2Book, TreeSide, VecSide};
pub use sync::{BookSync, Phase, SyncConfig, SyncEvent, SyncStats};
