//! The subcommands that run a feed: each file is a thin layer over the
//! library (it parses arguments, starts things, prints).

pub(crate) mod demo;
pub(crate) mod record;
pub(crate) mod signal;
pub(crate) mod stream;
