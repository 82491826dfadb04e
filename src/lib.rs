//! funnelhouse: a nightly batch ETL for revenue operations. It pulls leads from CRMs, spend
//! from ad platforms and answers from survey tools, normalizes them into canonical Arrow
//! batches, and writes ZSTD Parquet tables that DuckDB, Spark and BI tools read directly.

pub mod background;
pub mod cancel;
pub mod cli;
pub mod config;
pub mod days;
pub mod demo;
pub mod error;
pub mod http;
pub mod json;
pub mod lock;
pub mod metrics;
pub mod normalize;
pub mod ops;
pub mod pause;
pub mod pipeline;
pub mod ratelimit;
pub mod report;
pub mod sandbox;
pub mod scheduler;
pub mod sink;
pub mod sources;
pub mod spill;
pub mod state;
#[cfg(test)]
mod test_support;

pub use error::{Error, Result};
