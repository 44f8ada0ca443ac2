//! Conversions of capture files (`crate::record`) into other formats.
//!
//! - [`parquet`]: one Parquet file per venue, market, table and hour, with
//!   exact decimals and typed timestamps (`ferrofeed export parquet`,
//!   `ferrofeed record --parquet`; docs/parquet.md).

pub mod parquet;
