//! `ferrofeed stream`.
