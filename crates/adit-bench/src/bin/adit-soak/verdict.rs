//! The soak's verdict on each sampled curve. Warm-up is the first 10 % of the run (6 min of
//! an hour), and at least a minute (an interactive stream lives about 30 s, so the number of
//! open streams reaches its steady level within a minute): caches, pools and allocator arenas
//! fill while the traffic ramps up. A curve is flat when the mean of the last window (the final 10 % of the run)
//! is within 5 % of the mean of the first window after warm-up (the next 10 %).

/// Share of the run that is warm-up, and the size of each compared window.
const SHARE: f64 = 0.10;
/// Shortest warm-up, in seconds.
const WARM_UP_FLOOR: f64 = 60.0;
/// Largest change between the two windows' means that still counts as flat, in percent.
pub const TOLERANCE_PCT: f64 = 5.0;

/// Where a moment of the run falls.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    duration: f64,
}

impl Phases {
    /// The phases of a run of `duration` seconds.
    pub fn new(duration: f64) -> Self {
        Self { duration }
    }

    /// End of warm-up, in seconds (never past the start of the last window's predecessor).
    pub fn warm_up_end(&self) -> f64 {
        (self.duration * SHARE)
            .max(WARM_UP_FLOOR)
            .min(self.duration * (1.0 - 2.0 * SHARE))
    }

    /// The window after warm-up, `[start, end)`.
    pub fn first_window(&self) -> (f64, f64) {
        let start = self.warm_up_end();
        (start, start + self.duration * SHARE)
    }

    /// The last window, `[start, end]`.
    pub fn last_window(&self) -> (f64, f64) {
        (self.duration * (1.0 - SHARE), self.duration)
    }

    /// The phase of second `t`: `warmup`, `first`, `steady`, `last` or `after`.
    pub fn name(&self, t: f64) -> &'static str {
        let (first_end, last_start) = (self.first_window().1, self.last_window().0);
        if t < self.warm_up_end() {
            "warmup"
        } else if t < first_end {
            "first"
        } else if t < last_start {
            "steady"
        } else if t <= self.duration + 1.0 {
            "last"
        } else {
            "after"
        }
    }
}

/// What one curve did.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Its name.
    pub name: &'static str,
    /// First sample.
    pub start: f64,
    /// Last sample of the run.
    pub end: f64,
    /// Largest sample.
    pub max: f64,
    /// Mean of the first window after warm-up.
    pub first_mean: f64,
    /// Mean of the last window.
    pub last_mean: f64,
    /// `last_mean` against `first_mean`, in percent.
    pub change_pct: f64,
    /// Least-squares slope after warm-up, in percent of `first_mean` per hour.
    pub slope_pct_per_hour: f64,
    /// Whether `change_pct` is within the tolerance.
    pub flat: bool,
}

/// Judges the curve of `(t, value)` samples.
pub fn judge(name: &'static str, points: &[(f64, f64)], phases: Phases) -> Curve {
    let mean_in = |(from, to): (f64, f64)| {
        let v: Vec<f64> = points
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, v)| *v)
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let (first_mean, last_mean) = (
        mean_in(phases.first_window()),
        mean_in(phases.last_window()),
    );
    let change_pct = (last_mean - first_mean) / first_mean * 100.0;
    let steady: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, _)| *t >= phases.warm_up_end())
        .collect();
    Curve {
        name,
        start: points.first().map_or(f64::NAN, |p| p.1),
        end: points.last().map_or(f64::NAN, |p| p.1),
        max: points.iter().map(|p| p.1).fold(f64::NAN, f64::max),
        first_mean,
        last_mean,
        change_pct,
        slope_pct_per_hour: slope(&steady) * 3600.0 / first_mean * 100.0,
        flat: change_pct.abs() <= TOLERANCE_PCT,
    }
}

/// Least-squares slope of `points`, per second.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mt, mv) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - mv)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if var == 0.0 { 0.0 } else { cov / var }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..=360)
            .map(|i| (i as f64 * 10.0, f(i as f64 * 10.0)))
            .collect()
    }

    #[test]
    fn a_level_curve_with_a_warm_up_ramp_is_flat() {
        let c = judge(
            "rss",
            &curve(|t| if t < 200.0 { t } else { 200.0 }),
            Phases::new(3600.0),
        );
        assert!(c.flat, "{c:?}");
        assert!(c.change_pct.abs() < 1e-9);
    }

    #[test]
    fn a_curve_that_grows_ten_percent_an_hour_is_not() {
        let c = judge("rss", &curve(|t| 1000.0 + t / 36.0), Phases::new(3600.0));
        assert!(!c.flat, "{c:?}");
        assert!((c.slope_pct_per_hour - 10.0).abs() < 1.0, "{c:?}");
    }

    #[test]
    fn a_short_run_warms_up_for_a_minute() {
        let p = Phases::new(180.0);
        assert_eq!(p.warm_up_end(), 60.0);
        assert_eq!(p.first_window(), (60.0, 78.0));
        assert_eq!(p.last_window(), (162.0, 180.0));
    }

    #[test]
    fn phases_split_the_run() {
        let p = Phases::new(3600.0);
        assert_eq!(
            [0.0, 400.0, 1000.0, 3500.0, 3700.0].map(|t| p.name(t)),
            ["warmup", "first", "steady", "last", "after"]
        );
    }
}
