//! The one decode error of every venue's normalizer.

/// Why a frame could not be decoded. Every variant keeps the offending frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not an object or array at the top level.
    #[error("malformed JSON: {reason}")]
    Malformed {
        /// The parser's message.
        reason: String,
        /// The frame exactly as received.
        payload: String,
    },
    /// A known payload type with missing or invalid fields.
    #[error("invalid {what} payload: {reason}")]
    Invalid {
        /// The payload type (`trade`, `depthUpdate`, `orderbook`, ...).
        what: &'static str,
        /// What was wrong.
        reason: String,
        /// The frame exactly as received.
        payload: String,
    },
    /// A Binance spot partial-depth payload (`{lastUpdateId,bids,asks}`)
    /// outside the combined envelope: it names no symbol, only the stream
    /// name does.
    #[error(
        "partial-depth payload without a stream name: spot partial depth carries no symbol; \
         decode the combined-stream frame ({{\"stream\":\"<symbol>@depth<N>\",\"data\":...}})"
    )]
    PartialDepthWithoutStream {
        /// The frame exactly as received.
        payload: String,
    },
}

impl DecodeError {
    /// The frame that failed, exactly as received.
    pub fn payload(&self) -> &str {
        match self {
            DecodeError::Malformed { payload, .. }
            | DecodeError::Invalid { payload, .. }
            | DecodeError::PartialDepthWithoutStream { payload } => payload,
        }
    }
}
