//! Per-source progress while a run pulls (filled in below).
