//! Test doubles of venue rules, written down before the venue modules exist,
//! to show the engine's trait can express each venue. They parse with
//! serde_json; the real venue modules choose their parser by measurement.

#![allow(dead_code)]

pub mod bybit;
pub mod deribit;
