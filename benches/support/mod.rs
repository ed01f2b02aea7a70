//! Shared by the benches: reading back criterion's estimates to print ratios.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// Reads the mean time per iteration, in nanoseconds, that criterion just measured for
/// `group/bench`.
pub fn mean_ns(group: &str, bench: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let path = target
        .join("criterion")
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    // `{"mean":{"confidence_interval":{...},"point_estimate":123.4,...`
    let mean = &json[json.find("\"mean\"")?..];
    let value = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// Prints each bench's time as a ratio to `baseline`'s, all from this run.
pub fn print_time_ratios(group: &str, baseline: &str, benches: &[&str]) {
    let Some(base) = mean_ns(group, baseline) else {
        eprintln!("ratios: no estimate for {group}/{baseline}");
        return;
    };
    println!("\n{group}: time per call relative to {baseline} ({base:.2} ns), same run");
    for bench in benches {
        match mean_ns(group, bench) {
            Some(t) => println!("  {bench:<28} {t:>10.2} ns  {:>6.2}x", t / base),
            None => println!("  {bench:<28} (no estimate)"),
        }
    }
}

/// Prints each bench's rate (operations per second) and its ratio to `baseline`'s rate,
/// all from this run: a ratio of 0.97 means 3% slower than the baseline.
pub fn print_rate_ratios(group: &str, baseline: &str, benches: &[&str]) {
    let Some(base) = mean_ns(group, baseline) else {
        eprintln!("ratios: no estimate for {group}/{baseline}");
        return;
    };
    let rate = |ns: f64| 1e9 / ns;
    println!("\n{group}: rate relative to {baseline}, same run");
    println!("  {baseline:<28} {:>12.0} /s   1.000", rate(base));
    for bench in benches {
        match mean_ns(group, bench) {
            Some(t) => println!("  {bench:<28} {:>12.0} /s   {:.3}", rate(t), base / t),
            None => println!("  {bench:<28} (no estimate)"),
        }
    }
}

/// Runs each of `variants` (each times one batch of the same work) once per round, for
/// `rounds` rounds, rotating which goes first so that none always follows another. For
/// each variant after the first, returns the median over rounds of the first's time
/// divided by its own: its rate relative to the first, measured side by side, which slow
/// drifts of a shared machine cannot bias.
pub fn paired(rounds: usize, variants: &mut [&mut dyn FnMut() -> std::time::Duration]) -> Vec<f64> {
    let n = variants.len();
    let mut ratios = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        let mut times = vec![0.0; n];
        for k in 0..n {
            let i = (round + k) % n;
            times[i] = variants[i]().as_secs_f64();
        }
        for i in 1..n {
            ratios[i].push(times[0] / times[i]);
        }
    }
    ratios
        .into_iter()
        .skip(1)
        .map(|mut r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect()
}

/// One batch of a paired round: `$per_round` sequential runs of the body on `$rt`, timed;
/// a `&mut dyn FnMut() -> Duration` for [`paired`].
#[allow(unused_macros)]
macro_rules! timed_batch {
    ($rt:expr, $per_round:expr, { $($body:tt)* }) => {
        &mut || {
            $rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..$per_round {
                    $($body)*
                }
                start.elapsed()
            })
        }
    };
}
