//! Every integration test of this crate in one binary (one link instead of
//! one per file; issue 19). Each module is one former test file.

mod acks;
mod calls;
mod common;
mod doubles;
mod engine;
mod pool_chars;
