//! Integration tests: one binary, a module per area. They run against real servers on
//! 127.0.0.1 (the sandbox, an S3-compatible server) and read what we wrote back with DuckDB.

mod backfill;
mod bounds;
mod crash;
mod crm;
mod delta;
mod demo_job;
mod deploy;
mod fanin;
mod faults;
mod guarantees;
mod harness;
mod hostile;
mod icp;
mod intent;
mod job_files;
mod metrics;
mod ops;
mod readers;
mod rejects;
mod report;
mod secrets;
mod spend;
mod stores;
mod support;
mod surveys;
