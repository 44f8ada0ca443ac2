//! Placeholder: the WebSocket client measurement lands here.
fn main() {}
