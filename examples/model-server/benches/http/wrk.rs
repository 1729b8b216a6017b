//! Runs wrk (the load generator, written in C: it is not the bottleneck) and
//! reads its summary.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::servers::BenchResult;

pub const CONNECTIONS: u32 = 64;
pub const THREADS: u32 = 2;

/// What one wrk run measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Load {
    pub requests: u64,
    pub requests_per_second: f64,
    pub p99: Duration,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

/// A wrk script that POSTs `body` as JSON on every request. The body is
/// inlined as a Lua long string, so wrk builds the request once per thread.
pub fn post_script(body: &str) -> String {
    format!("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [==[{body}]==]\n")
}

pub fn run(url: &str, script: &Path, duration: Duration) -> BenchResult<Load> {
    let output = Command::new("wrk")
        .arg(format!("-t{THREADS}"))
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{}s", duration.as_secs()))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr)).into());
    }
    parse(&text).ok_or_else(|| format!("cannot read wrk's summary:\n{text}").into())
}

/// Reads `Requests/sec`, the 99% latency line, non-2xx responses and socket errors.
fn parse(text: &str) -> Option<Load> {
    let mut load = Load::default();
    let mut seen_rate = false;
    let mut seen_p99 = false;
    for line in text.lines().map(str::trim) {
        if let Some((count, _)) = line.split_once(" requests in ") {
            load.requests = count.trim().parse().ok()?;
        } else if let Some(rate) = line.strip_prefix("Requests/sec:") {
            load.requests_per_second = rate.trim().parse().ok()?;
            seen_rate = true;
        } else if let Some(latency) = line.strip_prefix("99%") {
            load.p99 = duration(latency.trim())?;
            seen_p99 = true;
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.non_2xx = count.trim().parse().ok()?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            load.socket_errors =
                errors.split(',').filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok()).sum();
        }
    }
    (seen_rate && seen_p99).then_some(load)
}

/// wrk prints latencies as `812.00us`, `4.90ms` or `1.02s`.
fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// A summary as wrk 4.1 prints it (the error lines as its source formats them).
const SAMPLE: &str = "Running 1s test @ http://127.0.0.1:18093/
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   602.83us    1.05ms   6.24ms   85.16%
    Req/Sec    35.26k     6.74k   62.06k    90.48%
  Latency Distribution
     50%   64.00us
     75%  730.00us
     90%    2.18ms
     99%    4.48ms
  73789 requests in 1.10s, 10.48MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  66998.01
Transfer/sec:      9.52MB
";

/// Checks the parser against `SAMPLE`, so a misread summary fails the smoke test.
pub fn check_parser() -> BenchResult<()> {
    let load = parse(SAMPLE).ok_or("the sample summary does not parse")?;
    let expected = (73789, 66998.01, 4480, 7, 3);
    let read = (load.requests, load.requests_per_second, load.p99.as_micros(), load.non_2xx, load.socket_errors);
    if read != expected {
        return Err(format!("wrk summary read as {read:?}, expected {expected:?}").into());
    }
    Ok(())
}
