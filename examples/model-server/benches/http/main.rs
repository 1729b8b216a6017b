//! `make bench` (`cargo bench -p trainloop-example-model-server --bench http`):
//! the release model server under wrk, with two baselines measured in the
//! same run so the figures read as ratios to what the machine allows:
//!
//! - (a) single-row KServe V1 predictions;
//! - (b) batched Open Inference Protocol V2 requests of 64 rows;
//! - (c) a no-op handler on the same HTTP stack, same request, same answer bytes;
//! - (d) nginx answering the same bytes from a configuration in a temp dir.
//!
//! Each round runs c and a interleaved in `BENCH_SLICES` slices (default 10;
//! c a a c c a …, so noise from other work on the machine hits the figure
//! and its baseline alike), then d and b; `BENCH_ROUNDS` rounds (default 3)
//! of `BENCH_SECONDS` each (default 10), 64 connections, 2 wrk threads.
//! Every server it starts is stopped when it ends, also on failure.
//!
//! Under `cargo test` (no `--bench` argument) it is a smoke test instead:
//! the same servers and bodies, a few requests each through a plain client,
//! checking the answers and the live profile's count, without wrk or nginx.

mod bodies;
mod noop;
mod report;
mod servers;
mod setup;
mod wrk;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "--noop-server") {
        return match (args.get(position + 1), args.get(position + 2)) {
            (Some(address), Some(body_file)) => noop::run(address, body_file),
            _ => {
                eprintln!("usage: --noop-server ADDR BODY_FILE");
                ExitCode::FAILURE
            }
        };
    }
    let outcome = if args.iter().any(|a| a == "--bench") { report::bench() } else { setup::smoke() };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("model server benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}
