//! `ferrofeed record` and `ferrofeed replay` (placeholder until the record
//! issue lands; not reachable from the command line yet).
