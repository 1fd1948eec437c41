//! Deterministic synthetic histories for the forecast. Each scenario draws its
//! parameters from a seeded generator and knows the true date its value
//! reaches the limit, so an error can be measured. Shared by the unit tests
//! of `cm_history::forecast` and the `forecast_error` example.
//!
//! Filesystem scenarios are hourly rollups (as the store's hourly tier hands
//! them out), rounded to 0.01 as the store keeps percentages; the wear
//! scenario is raw whole-percent samples every ten minutes, as NVMe drives
//! report `percentage_used`.

use cm_proto::history::Point;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// Percent series reach their limit at 100.
pub const LIMIT: f64 = 100.0;
/// 2026-03-02T00:00:00Z; each series ends at a different time in the week after.
const EPOCH_MS: i64 = 1_772_409_600_000;
/// Days of history generated: more than the default 30-day window, so the
/// window's cut is exercised too.
pub const HISTORY_DAYS: i64 = 35;

/// SplitMix64: a small seedable generator, plenty for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal, by Box-Muller.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The shapes of history the forecast is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Linear,
    Bursts,
    Sawtooth,
    Gaps,
    Cleanup,
    StepUp,
    WearSwap,
    RandomWalk,
    Flat,
    Falling,
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Scenario::Linear,
        Scenario::Bursts,
        Scenario::Sawtooth,
        Scenario::Gaps,
        Scenario::Cleanup,
        Scenario::StepUp,
        Scenario::WearSwap,
        Scenario::RandomWalk,
        Scenario::Flat,
        Scenario::Falling,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Linear => "linear",
            Scenario::Bursts => "bursts",
            Scenario::Sawtooth => "sawtooth",
            Scenario::Gaps => "gaps",
            Scenario::Cleanup => "cleanup",
            Scenario::StepUp => "step up",
            Scenario::WearSwap => "wear swap",
            Scenario::RandomWalk => "random walk",
            Scenario::Flat => "flat",
            Scenario::Falling => "falling",
        }
    }

    /// What the scenario generates, for the error table.
    pub fn what(self) -> &'static str {
        match self {
            Scenario::Linear => "0.1-1.5 %/d, full in 7-120 d, hourly noise sd 0.05-0.8",
            Scenario::Bursts => "linear + on 40 % of days a 1-30 h burst of +2-10 %",
            Scenario::Sawtooth => "linear + daily log rotation dropping 0.5-3 %, at a random hour +-1 h",
            Scenario::Gaps => "linear, 25 % of days missing and one 3-6 day outage",
            Scenario::Cleanup => "linear, 8-25 % freed 8-22 d ago",
            Scenario::StepUp => "slower growth, then +8-15 % 8-22 d ago and faster growth",
            Scenario::WearSwap => "whole-percent wear, drive swapped 8-22 d ago, new one 0.3-1 %/d",
            Scenario::RandomWalk => "drift 0.2-1.2 %/d + random walk 0.1-0.6 %/sqrt(d); true date as it happens",
            Scenario::Flat => "constant 20-90 % + noise",
            Scenario::Falling => "shrinking 0.1-1 %/d + noise",
        }
    }
}

/// One synthetic history and what is true about it.
pub struct Series {
    pub points: Vec<Point>,
    pub now_ms: i64,
    /// When the value reaches [`LIMIT`]: where the noise-free trend crosses
    /// it, or for the random walk the first hour its path does; `None` when
    /// it never does.
    pub truth_ms: Option<i64>,
    /// Growth per day since `regime_ms`.
    pub per_day: f64,
    /// Where the stretch the fit should use begins: the last jump, or the
    /// start of the generated history.
    pub regime_ms: i64,
}

/// A ramp through `level` at `at_ms`, growing `per_day`.
fn ramp(level: f64, at_ms: i64, per_day: f64) -> impl Fn(i64) -> f64 {
    move |t| level + per_day * (t - at_ms) as f64 / DAY_MS as f64
}

/// The day at which a ramp through `level` at `at_ms` reaches the limit.
fn crossing(level: f64, at_ms: i64, per_day: f64) -> i64 {
    at_ms + ((LIMIT - level) / per_day * DAY_MS as f64).round() as i64
}

/// Hourly rollups of `value` plus noise of standard deviation `sd`, for the
/// hours `keep` accepts, from [`HISTORY_DAYS`] before `now_ms` to `now_ms`.
fn hourly(now_ms: i64, rng: &mut Rng, sd: f64, keep: impl Fn(i64) -> bool, value: impl Fn(i64) -> f64) -> Vec<Point> {
    let first = (now_ms - HISTORY_DAYS * DAY_MS).div_euclid(HOUR_MS) * HOUR_MS;
    let mut points = Vec::new();
    let mut ts = first;
    while ts <= now_ms {
        let mid = (ts + HOUR_MS / 2).min(now_ms);
        let mean = value(mid) + sd * rng.normal();
        let (below, above) = (sd * rng.normal().abs(), sd * rng.normal().abs());
        if keep(ts) {
            let round = |v: f64| (v * 100.0).round() / 100.0;
            points.push(Point {
                ts_ms: ts,
                min: round(mean - below),
                max: round(mean + above),
                mean: round(mean),
                count: 60,
            });
        }
        ts += HOUR_MS;
    }
    points
}

/// The history of `scenario` drawn with `seed`.
pub fn generate(scenario: Scenario, seed: u64) -> Series {
    let mut rng = Rng::new(seed ^ ((scenario as u64) << 56));
    let now_ms = EPOCH_MS + (rng.uniform(0.0, 7.0 * 24.0 * 60.0) as i64) * MINUTE_MS;
    let start_ms = now_ms - HISTORY_DAYS * DAY_MS;
    let sd = rng.uniform(0.05, 0.8);
    let all = |_: i64| true;
    match scenario {
        Scenario::Linear | Scenario::Bursts | Scenario::Sawtooth | Scenario::Gaps => {
            let days_left = rng.uniform(7.0, 120.0);
            // Far enough below the limit that noise does not touch it yet.
            let slowest = (0.1f64).max((4.0 * sd + 0.5) / days_left);
            let per_day = rng.uniform(slowest, (95.0 / (days_left + HISTORY_DAYS as f64)).min(1.5));
            let level_now = LIMIT - per_day * days_left;
            let trend = ramp(level_now, now_ms, per_day);
            let points = match scenario {
                Scenario::Bursts => {
                    let room = 0.7 * (LIMIT - level_now);
                    let mut bursts: Vec<(i64, i64, f64)> = Vec::new();
                    for d in 0..=HISTORY_DAYS {
                        if rng.chance(0.4) {
                            let from = start_ms + d * DAY_MS + (rng.uniform(0.0, 24.0) * HOUR_MS as f64) as i64;
                            let to = from + (rng.uniform(1.0, 30.0) * HOUR_MS as f64) as i64;
                            bursts.push((from, to, rng.uniform(2.0, 10.0).min(room)));
                        }
                    }
                    let burst = move |t: i64| -> f64 {
                        bursts.iter().filter(|(from, to, _)| (*from..*to).contains(&t)).map(|b| b.2).sum()
                    };
                    hourly(now_ms, &mut rng, sd, all, |t| trend(t) + burst(t))
                }
                Scenario::Sawtooth => {
                    let drop = rng.uniform(0.5, 3.0);
                    let hour = rng.uniform(0.0, 24.0);
                    let first_day = start_ms.div_euclid(DAY_MS) - 1;
                    let rotations: Vec<i64> = (0..HISTORY_DAYS + 3)
                        .map(|d| {
                            let at = hour + rng.uniform(-1.0, 1.0);
                            (first_day + d) * DAY_MS + (at * HOUR_MS as f64) as i64
                        })
                        .collect();
                    // Logs grow through the day around the trend and fall by `drop` at each rotation.
                    let saw = move |t: i64| -> f64 {
                        let next = rotations.partition_point(|&r| r <= t).clamp(1, rotations.len() - 1);
                        let (prev, next) = (rotations[next - 1], rotations[next]);
                        drop * ((t - prev) as f64 / (next - prev) as f64 - 0.5)
                    };
                    hourly(now_ms, &mut rng, sd, all, |t| trend(t) + saw(t))
                }
                Scenario::Gaps => {
                    let missing: Vec<bool> = (0..=HISTORY_DAYS + 1).map(|_| rng.chance(0.25)).collect();
                    let outage_from = now_ms - (rng.uniform(3.0, 25.0) * DAY_MS as f64) as i64;
                    let outage_to = outage_from + (rng.uniform(3.0, 6.0) * DAY_MS as f64) as i64;
                    let day0 = start_ms.div_euclid(DAY_MS);
                    let keep = move |t: i64| {
                        !missing[(t.div_euclid(DAY_MS) - day0) as usize] && !(outage_from..outage_to).contains(&t)
                    };
                    hourly(now_ms, &mut rng, sd, keep, trend)
                }
                _ => hourly(now_ms, &mut rng, sd, all, trend),
            };
            Series {
                points,
                now_ms,
                truth_ms: Some(crossing(level_now, now_ms, per_day)),
                per_day,
                regime_ms: start_ms,
            }
        }
        Scenario::Cleanup | Scenario::StepUp => {
            let jump_ms = now_ms - (rng.uniform(8.0, 22.0) * DAY_MS as f64) as i64;
            let level = rng.uniform(40.0, 70.0);
            let per_day = rng.uniform(0.2, 1.2);
            let after = ramp(level, jump_ms, per_day);
            let before: Box<dyn Fn(i64) -> f64> = if scenario == Scenario::Cleanup {
                let freed = rng.uniform(8.0, 25.0_f64.min(95.0 - level));
                Box::new(ramp(level + freed, jump_ms, per_day))
            } else {
                let step = rng.uniform(8.0, 15.0);
                Box::new(ramp(level - step, jump_ms, rng.uniform(0.1, 0.5)))
            };
            let points = hourly(now_ms, &mut rng, sd, all, |t| if t < jump_ms { before(t) } else { after(t) });
            Series { points, now_ms, truth_ms: Some(crossing(level, jump_ms, per_day)), per_day, regime_ms: jump_ms }
        }
        Scenario::WearSwap => {
            let swap_ms = now_ms - (rng.uniform(8.0, 22.0) * DAY_MS as f64) as i64;
            let old = ramp(rng.uniform(30.0, 80.0), swap_ms, rng.uniform(0.05, 0.4));
            let per_day = rng.uniform(0.3, 1.0);
            let new = ramp(0.0, swap_ms, per_day);
            let step = 10 * MINUTE_MS;
            let first = (start_ms / step + 1) * step;
            let points = (0..)
                .map(|k| first + k * step)
                .take_while(|&t| t <= now_ms)
                .map(|t| Point::raw(t, if t < swap_ms { old(t) } else { new(t) }.floor()))
                .collect();
            Series { points, now_ms, truth_ms: Some(crossing(0.0, swap_ms, per_day)), per_day, regime_ms: swap_ms }
        }
        Scenario::RandomWalk => {
            let days_left = rng.uniform(7.0, 120.0);
            let per_day = rng.uniform(0.2, (95.0 / (days_left + HISTORY_DAYS as f64)).min(1.2));
            let walk_sd = rng.uniform(0.1, 0.6) / 24f64.sqrt();
            let first = start_ms.div_euclid(HOUR_MS) * HOUR_MS;
            let mut level = LIMIT - per_day * (days_left + HISTORY_DAYS as f64);
            let mut path = Vec::new();
            let mut truth_ms = None;
            let mut ts = first;
            // Past `now_ms` the walk goes on unseen, to find the hour it reaches the limit.
            while truth_ms.is_none() && ts < now_ms + 20 * 365 * DAY_MS {
                level += per_day / 24.0 + walk_sd * rng.normal();
                if ts <= now_ms {
                    path.push(level);
                } else if level >= LIMIT {
                    truth_ms = Some(ts);
                }
                ts += HOUR_MS;
            }
            let points = hourly(now_ms, &mut rng, sd.min(0.3), all, |t| path[((t - first) / HOUR_MS) as usize]);
            Series { points, now_ms, truth_ms, per_day, regime_ms: start_ms }
        }
        Scenario::Flat => {
            let level = rng.uniform(20.0, 90.0);
            let points = hourly(now_ms, &mut rng, sd, all, |_| level);
            Series { points, now_ms, truth_ms: None, per_day: 0.0, regime_ms: start_ms }
        }
        Scenario::Falling => {
            let per_day = -rng.uniform(0.1, 1.0);
            let trend = ramp(rng.uniform(10.0, 60.0), now_ms, per_day);
            let points = hourly(now_ms, &mut rng, sd, all, trend);
            Series { points, now_ms, truth_ms: None, per_day, regime_ms: start_ms }
        }
    }
}
