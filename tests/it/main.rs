//! Integration tests: one binary, a module per area. They run against real servers on
//! 127.0.0.1 (the sandbox) and read what we wrote back with DuckDB.

mod crm;
mod demo_job;
mod deploy;
mod job_files;
mod metrics;
mod ops;
mod rejects;
mod spend;
mod support;
mod surveys;
