//! The venue seam, defined in `ferrofeed-model` (no tokio, no I/O) so venue
//! modules can implement it without depending on the engine.

pub use ferrofeed_model::rules::*;
