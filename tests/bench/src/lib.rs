//! `switchyard-bench`: measures every BFF against a minimal hand-written floor making the
//! same upstream calls, on the sandbox, in one command.
//!
//! The BFF and the floor under test each run as a child process (this binary re-executed
//! with `serve …`), so their CPU time and peak memory are read from `/proc` apart from the
//! sandbox and the load generator, which run in the parent. See BENCHMARKS.md.

pub mod floor;
pub mod instructions;
pub mod limiter;
pub mod load;
pub mod observe;
pub mod otlp;
pub mod process;
pub mod report;
pub mod scenario;
pub mod streaming;
