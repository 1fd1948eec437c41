//! Measures the forecast's error on many seeded synthetic histories per
//! scenario and prints a Markdown table: how often a forecast was given, the
//! median and 90th percentile of the central date's absolute error in days,
//! how often the true date fell inside the range, the range's median width,
//! the median error of the growth rate, and, where the history has a jump,
//! how often the fit began within a day of it.
//!
//! `cargo run --profile dist -p cm-history --example forecast_error [SEEDS]`
//! (1000 seeds per scenario unless told).

#[path = "synthetic/scenarios.rs"]
mod scenarios;

use cm_history::forecast::{forecast, ForecastConfig};
use scenarios::{generate, Scenario, DAY_MS, LIMIT};

fn main() {
    let seeds: u64 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 1000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: forecast_error [SEEDS], SEEDS a whole number above zero");
            std::process::exit(2);
        }
    };
    let cfg = ForecastConfig::default();
    println!(
        "| scenario | generated | forecast given | median error (d) | p90 error (d) | true date in range \
         | median range width (d) | median rate error | fit from the jump |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for scenario in Scenario::ALL {
        let (mut errors, mut widths, mut rates, mut inside, mut given, mut from_jump) =
            (Vec::new(), Vec::new(), Vec::new(), 0, 0, 0);
        let mut jumped = false;
        for seed in 0..seeds {
            let s = generate(scenario, seed);
            let Some(f) = forecast(&s.points, LIMIT, s.now_ms, &cfg) else { continue };
            given += 1;
            if s.per_day != 0.0 {
                rates.push((f.per_day / s.per_day - 1.0).abs());
            }
            if s.regime_ms > s.now_ms - cfg.window_ms {
                jumped = true;
                from_jump += usize::from((f.days - (s.now_ms - s.regime_ms) as f64 / DAY_MS as f64).abs() < 1.0);
            }
            widths.push((f.latest_ms as f64 - f.earliest_ms as f64) / DAY_MS as f64);
            if let Some(truth) = s.truth_ms {
                errors.push((f.at_ms as f64 - truth as f64).abs() / DAY_MS as f64);
                inside += usize::from((f.earliest_ms as i64..=f.latest_ms as i64).contains(&truth));
            }
        }
        let share = |k: usize, of: usize| {
            if of == 0 {
                "-".to_string()
            } else {
                format!("{:.0} %", 100.0 * k as f64 / of as f64)
            }
        };
        let days = |v: Option<f64>| v.map_or("-".to_string(), |d| format!("{d:.1}"));
        let percent = |v: Option<f64>| v.map_or("-".to_string(), |r| format!("{:.1} %", 100.0 * r));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            scenario.name(),
            scenario.what(),
            share(given, seeds as usize),
            days(quantile(&mut errors, 0.5)),
            days(quantile(&mut errors, 0.9)),
            share(inside, errors.len()),
            days(quantile(&mut widths, 0.5)),
            percent(quantile(&mut rates, 0.5)),
            if jumped { share(from_jump, given) } else { "-".to_string() },
        );
    }
}

/// The `q` quantile by nearest rank; `None` for no values.
fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    values.sort_unstable_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).max(1);
    values.get(rank - 1).copied()
}
