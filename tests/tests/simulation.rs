//! The deterministic simulator in CI: 2,000 seeds across n = 4, 7 and 15 with every fault (loss, duplication,
//! delay and reordering, partitions that heal, crashes between any two effects, clock skew) and Byzantine members
//! up to the bounds; and proof that the invariants can fail: beyond the safety bound, the coordinated split-brain
//! attack is caught.
//!
//! Any number of seeds: `target/release/simulate --seeds 100000 --n 4 --byzantine 1` (see `src/bin/simulate.rs`).

use tests::sim::{run_seeds, Behaviour, SimConfig};

fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4)
}

/// (n, Byzantine members, seeds, first seed).
const PLAN: &[(usize, usize, u64, u64)] = &[
    (4, 0, 860, 0),
    (4, 1, 460, 10_000),
    (7, 0, 300, 20_000),
    (7, 2, 150, 30_000),
    (15, 0, 100, 40_000),
    (15, 4, 100, 50_000),
    // Beyond the liveness bound (n - m = 4) but within the safety bound (2m - n - 1 = 6): safety only.
    (15, 6, 30, 60_000),
];

#[test]
fn two_thousand_seeds_never_fork_and_recover_after_faults() {
    let started = std::time::Instant::now();
    let mut total = 0;
    let mut failures = Vec::new();
    for &(n, byzantine, seeds, first) in PLAN {
        let (reports, failed) = run_seeds(first, seeds, threads(), |seed| {
            let mut config = SimConfig::new(seed, n);
            config.byzantine = byzantine;
            config
        });
        let max_recovery = reports
            .iter()
            .filter_map(|r| r.recovery_ms)
            .max()
            .unwrap_or(0);
        let mean_height = reports
            .iter()
            .map(|r| f64::from(r.final_height))
            .sum::<f64>()
            / reports.len().max(1) as f64;
        println!(
            "n={n} byzantine={byzantine}: {} seeds, {} failed, mean final height {mean_height:.1}, \
             max recovery after faults {max_recovery} ms",
            seeds,
            failed.len()
        );
        total += seeds;
        failures.extend(failed);
    }
    println!("{total} seeds in {:.1} s", started.elapsed().as_secs_f64());
    assert!(total >= 2_000);
    if let Some(first) = failures.first() {
        panic!(
            "{} of {total} seeds failed; the first:\n{first}",
            failures.len()
        );
    }
}

#[test]
fn split_brain_beyond_the_safety_bound_is_caught() {
    // n = 4, m = 3 tolerates 1 Byzantine member; 2 coordinated ones can make the honest members decide different
    // blocks. The invariants must notice (otherwise they could not catch a real bug either).
    let (_, failures) = run_seeds(0, 40, threads(), |seed| {
        let mut config = SimConfig::new(seed, 4);
        config.byzantine = 2;
        config.byzantine_behaviour = Some(Behaviour::split_brain());
        config
    });
    assert!(
        failures.iter().any(|f| {
            let v = &f.violation.0;
            v.contains("DIVERGE") || v.contains("FORK") || v.contains("DOUBLE SIGN")
        }),
        "two coordinated Byzantine members out of 4 went unnoticed in 40 seeds"
    );
}

#[test]
fn a_failing_seed_reproduces_exactly() {
    let make = |seed| {
        let mut config = SimConfig::new(seed, 4);
        config.byzantine = 2;
        config.byzantine_behaviour = Some(Behaviour::split_brain());
        config
    };
    let (_, failures) = run_seeds(0, 40, 1, make);
    let first = failures
        .first()
        .expect("a failing seed (see the test above)");
    let again = tests::sim::Simulation::new(first.config.clone())
        .expect("config")
        .run();
    let again = again.expect_err("the same seed fails again");
    assert_eq!(again.violation, first.violation);
    assert_eq!(
        again.schedule, first.schedule,
        "same schedule, event for event"
    );
}
