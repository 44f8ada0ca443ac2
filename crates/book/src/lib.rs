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
