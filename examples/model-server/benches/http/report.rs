//! The benchmark proper: rounds of wrk runs against the model server and its
//! baselines, printed per round and as medians.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::bodies::BATCH_ROWS;
use crate::servers::{self, BenchResult, ServerProcess};
use crate::setup::{self, V1_PATH, V2_PATH};
use crate::wrk::{self, CONNECTIONS, Load, THREADS};

/// The goals, printed next to the figures.
const GOAL_V1_TO_NOOP: f64 = 0.9;
const GOAL_P99: Duration = Duration::from_millis(5);
const GOAL_ROWS_PER_SECOND: f64 = 1_000_000.0;

/// One wrk run and the CPU time the server spent per request during it.
#[derive(Clone, Copy)]
struct Measured {
    load: Load,
    cpu_per_request: Option<Duration>,
}

struct Round {
    noop: Measured,
    v1: Measured,
    nginx: Measured,
    v2: Measured,
    /// a/c of each pair of adjacent slices (measured a second or two apart).
    slice_ratios: Vec<f64>,
}

impl Round {
    fn v1_to_noop(&self) -> f64 {
        self.v1.load.requests_per_second / self.noop.load.requests_per_second
    }
    fn v1_to_nginx(&self) -> f64 {
        self.v1.load.requests_per_second / self.nginx.load.requests_per_second
    }
    fn rows_per_second(&self) -> f64 {
        self.v2.load.requests_per_second * BATCH_ROWS as f64
    }
    /// The no-op's CPU per request over V1's: what a/c would be if the
    /// server had the CPU to itself (other work on the machine moves
    /// throughput more than it moves CPU time per request).
    fn v1_to_noop_by_cpu(&self) -> Option<f64> {
        Some(self.noop.cpu_per_request?.as_secs_f64() / self.v1.cpu_per_request?.as_secs_f64())
    }
}

fn env_number(name: &str, default: u64) -> BenchResult<u64> {
    match std::env::var(name) {
        Ok(raw) => Ok(raw.parse().map_err(|_| format!("{name}={raw:?} is not a whole number"))?),
        Err(_) => Ok(default),
    }
}

fn require(program: &str, version_flag: &str) -> BenchResult<()> {
    let found = Command::new(program).arg(version_flag).stdout(Stdio::null()).stderr(Stdio::null()).status();
    // wrk prints its version and exits 1; finding the program is what counts.
    found.map(|_| ()).map_err(|_| format!("{program} is not installed (`make bench` installs it)").into())
}

pub fn bench() -> BenchResult<()> {
    let seconds = env_number("BENCH_SECONDS", 10)?;
    let rounds = env_number("BENCH_ROUNDS", 3)?.max(1);
    require("wrk", "--version")?;
    require("nginx", "-v")?;
    let slices = env_number("BENCH_SLICES", 10)?.clamp(1, seconds.max(1));
    let duration = Duration::from_secs(seconds);
    let slice = Duration::from_secs(seconds / slices);

    let fixture = setup::start()?;
    let mut noop = servers::noop_server(&fixture.v1_answer_file)?;
    noop.await_ready(V1_PATH, &fixture.bodies.v1_single)?;
    let nginx_dir = fixture.dir.path().join("nginx");
    std::fs::create_dir(&nginx_dir)?;
    let mut nginx = servers::nginx(&nginx_dir, &fixture.v1_answer)?;
    nginx.await_ready(V1_PATH, &fixture.bodies.v1_single)?;
    let v1_script = fixture.dir.path().join("v1.lua");
    let v2_script = fixture.dir.path().join("v2.lua");
    std::fs::write(&v1_script, wrk::post_script(&fixture.bodies.v1_single))?;
    std::fs::write(&v2_script, wrk::post_script(&fixture.bodies.v2_batch))?;

    println!(
        "model server under wrk: {CONNECTIONS} connections, {THREADS} threads, {seconds} s per run, {rounds} round(s); \
         (c) and (a) in {slices} alternating slices each"
    );
    let measure_for =
        |run_time: Duration, server: &ServerProcess, path: &str, script: &std::path::Path| -> BenchResult<Measured> {
            let before = server.cpu_time();
            let load = wrk::run(&format!("{}{path}", server.base), script, run_time)?;
            let after = server.cpu_time();
            if load.non_2xx > 0 {
                return Err(format!("{}: {} answers were not 2xx", server.name, load.non_2xx).into());
            }
            let cpu_per_request = before
                .zip(after)
                .filter(|_| load.requests > 0)
                .map(|(before, after)| after.saturating_sub(before).div_f64(load.requests as f64));
            Ok(Measured { load, cpu_per_request })
        };
    let mut measured = Vec::new();
    for round in 1..=rounds {
        // (c) and (a) in alternating slices (c a a c c a …), so that other work
        // starting or stopping on the machine hits both alike.
        let mut noop_slices = Vec::new();
        let mut v1_slices = Vec::new();
        for index in 0..slices {
            let noop_first = index % 2 == 0;
            for noop_now in [noop_first, !noop_first] {
                if noop_now {
                    noop_slices.push(measure_for(slice, &noop, V1_PATH, &v1_script)?);
                } else {
                    v1_slices.push(measure_for(slice, &fixture.model, V1_PATH, &v1_script)?);
                }
            }
        }
        let nginx_run = measure_for(duration, &nginx, V1_PATH, &v1_script)?;
        let v2 = measure_for(duration, &fixture.model, V2_PATH, &v2_script)?;
        let slice_ratios =
            noop_slices.iter().zip(&v1_slices).map(|(c, a)| a.load.requests_per_second / c.load.requests_per_second);
        let result = Round {
            slice_ratios: slice_ratios.collect(),
            noop: combined(&noop_slices),
            v1: combined(&v1_slices),
            nginx: nginx_run,
            v2,
        };
        print_round(round, &result);
        measured.push(result);
    }
    print_summary(&measured);
    Ok(())
}

/// Slices of equal length as one run: their requests and CPU time summed,
/// requests/s averaged, and the highest slice's p99 (p99s do not add up; the
/// highest is the cautious reading).
fn combined(slices: &[Measured]) -> Measured {
    let count = slices.len().max(1) as f64;
    let load = Load {
        requests: slices.iter().map(|s| s.load.requests).sum(),
        requests_per_second: slices.iter().map(|s| s.load.requests_per_second).sum::<f64>() / count,
        p99: slices.iter().map(|s| s.load.p99).max().unwrap_or_default(),
        non_2xx: slices.iter().map(|s| s.load.non_2xx).sum(),
        socket_errors: slices.iter().map(|s| s.load.socket_errors).sum(),
    };
    let cpu: Option<Duration> = slices.iter().map(|s| Some(s.cpu_per_request?.mul_f64(s.load.requests as f64))).sum();
    let cpu_per_request = cpu.filter(|_| load.requests > 0).map(|cpu| cpu.div_f64(load.requests as f64));
    Measured { load, cpu_per_request }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// `41000/s p99 3.10 ms cpu 9.8 us/req`
fn describe(run: &Measured) -> String {
    let cpu = run.cpu_per_request.map_or(String::new(), |cpu| format!(" cpu {:.1} us/req", cpu.as_secs_f64() * 1e6));
    format!("{:.0}/s p99 {:.2} ms{cpu}", run.load.requests_per_second, ms(run.load.p99))
}

fn print_round(round: u64, r: &Round) {
    let errors: u64 = [r.noop, r.v1, r.nginx, r.v2].iter().map(|m| m.load.socket_errors).sum();
    println!("round {round}:");
    println!("  (c) no-op          {}", describe(&r.noop));
    println!("  (a) V1 single row  {}", describe(&r.v1));
    println!("  (d) nginx          {}", describe(&r.nginx));
    println!("  (b) V2 {BATCH_ROWS} rows      {} = {:.0} rows/s", describe(&r.v2), r.rows_per_second());
    println!(
        "  a/c {:.3} (median of slice pairs {:.3}), a/d {:.3}{}",
        r.v1_to_noop(),
        median(r.slice_ratios.clone()),
        r.v1_to_nginx(),
        if errors > 0 { format!(" ({errors} socket errors)") } else { String::new() }
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.is_empty() {
        f64::NAN
    } else if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn print_summary(rounds: &[Round]) {
    let of = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let v1_to_noop = of(&Round::v1_to_noop);
    let v1_p99 = Duration::from_secs_f64(of(&|r| r.v1.load.p99.as_secs_f64()));
    let rows = of(&Round::rows_per_second);
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!("medians over {} round(s):", rounds.len());
    println!("  run                          requests/s    p99         server CPU/request");
    let line = |name: &str, pick: &dyn Fn(&Round) -> Measured| {
        let cpu: Vec<f64> =
            rounds.iter().filter_map(|r| pick(r).cpu_per_request).map(|c| c.as_secs_f64() * 1e6).collect();
        println!(
            "  {name:<28} {:>10.0}  {:>6.2} ms  {}",
            of(&|r| pick(r).load.requests_per_second),
            of(&|r| ms(pick(r).load.p99)),
            if cpu.is_empty() { "n/a".to_string() } else { format!("{:.1} us", median(cpu)) }
        );
    };
    line("(a) V1 single row", &|r| r.v1);
    line(&format!("(b) V2 {BATCH_ROWS} rows"), &|r| r.v2);
    line("(c) no-op, same stack", &|r| r.noop);
    line("(d) nginx, fixed body", &|r| r.nginx);
    println!("  a/c {v1_to_noop:.3} (goal >= {GOAL_V1_TO_NOOP}: {})", verdict(v1_to_noop >= GOAL_V1_TO_NOOP));
    let by_cpu: Vec<f64> = rounds.iter().filter_map(Round::v1_to_noop_by_cpu).collect();
    if !by_cpu.is_empty() {
        println!("  a/c by server CPU per request {:.3}", median(by_cpu));
    }
    // A burst of other work during one slice moves that pair's ratio a lot
    // and the median of all pairs little.
    let pairs = median(rounds.iter().flat_map(|r| r.slice_ratios.iter().copied()).collect());
    println!(
        "  a/c median of adjacent slice pairs {pairs:.3} (goal >= {GOAL_V1_TO_NOOP}: {})",
        verdict(pairs >= GOAL_V1_TO_NOOP)
    );
    println!("  a/d {:.3}", of(&Round::v1_to_nginx));
    println!("  (a) p99 {:.2} ms (goal < {} ms: {})", ms(v1_p99), ms(GOAL_P99), verdict(v1_p99 < GOAL_P99));
    println!("  (b) {rows:.0} rows/s (goal >= {GOAL_ROWS_PER_SECOND:.0}: {})", verdict(rows >= GOAL_ROWS_PER_SECOND));
}
