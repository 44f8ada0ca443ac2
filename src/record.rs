//! Crash-safe capture files (placeholder: filled by the record issue).
