//! Arrival schedules as pure functions of a rate profile and a seed: when each party arrives.
//!
//! The profile's cumulative expected arrivals Λ(t) is inverted: with even gaps the n-th arrival
//! is at Λ⁻¹(n + ½); as a Poisson process the masses are sums of Exp(1) draws (time rescaling,
//! exact also for ramps and spikes). A rate change at run time switches to a constant rate from
//! that moment. Times are "active" seconds: the engine adds paused time on top.
//!
//! Also owns the seeded draws of who arrives: game mode, party size, `mmr`, region.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::scenario::{MmrDistribution, Population, RateProfile};

/// Where the rate comes from.
#[derive(Debug, Clone)]
enum Source {
    Profile,
    /// A rate set at run time: `rate` from active time `t0`, where the cumulative mass was `m0`.
    Constant {
        t0: f64,
        m0: f64,
        rate: f64,
    },
}

/// The arrival times of an open model.
#[derive(Debug, Clone)]
pub struct ArrivalSchedule {
    profile: RateProfile,
    poisson: bool,
    rng: StdRng,
    source: Source,
    /// Cumulative mass of the last arrival handed out.
    mass: f64,
    first: bool,
}

impl ArrivalSchedule {
    pub fn new(profile: RateProfile, poisson: bool, seed: u64) -> Self {
        ArrivalSchedule {
            profile,
            poisson,
            rng: StdRng::seed_from_u64(seed),
            source: Source::Profile,
            mass: 0.0,
            first: true,
        }
    }

    /// The next arrival's active time in seconds; `None` when the rate stays at zero forever.
    pub fn next_arrival(&mut self) -> Option<f64> {
        let step = if self.poisson {
            // 1 - U is in (0, 1], so the logarithm is finite.
            -(1.0 - self.rng.r#gen::<f64>()).ln()
        } else if self.first {
            0.5
        } else {
            1.0
        };
        self.first = false;
        self.mass += step;
        self.time_of_mass(self.mass)
    }

    /// Every arrival before `end` seconds (for tests and planning).
    pub fn take_until(&mut self, end: f64) -> Vec<f64> {
        let mut out = Vec::new();
        while let Some(t) = self.next_arrival() {
            if t >= end {
                break;
            }
            out.push(t);
        }
        out
    }

    /// From active time `now` on, arrive at a constant `rate` (parties per second). The next
    /// arrival is computed afresh from `now`.
    pub fn set_rate(&mut self, now: f64, rate: f64) {
        let m0 = self.mass_at(now);
        self.source = Source::Constant {
            t0: now,
            m0,
            rate: rate.max(0.0),
        };
        self.mass = m0;
        self.first = true;
    }

    /// The target rate at active time `t`.
    pub fn rate_at(&self, t: f64) -> f64 {
        match self.source {
            Source::Profile => self.profile.rate_at(t),
            Source::Constant { rate, .. } => rate,
        }
    }

    fn mass_at(&self, t: f64) -> f64 {
        match self.source {
            Source::Profile => self.profile.expected(t),
            Source::Constant { t0, m0, rate } => m0 + rate * (t - t0).max(0.0),
        }
    }

    fn time_of_mass(&self, m: f64) -> Option<f64> {
        match self.source {
            Source::Profile => profile_time_of_mass(&self.profile, m),
            Source::Constant { t0, m0, rate } => (rate > 0.0).then(|| t0 + (m - m0) / rate),
        }
    }
}

/// Λ⁻¹: the time at which `m` arrivals are expected.
pub fn profile_time_of_mass(profile: &RateProfile, mut m: f64) -> Option<f64> {
    let mut start = 0.0;
    for s in &profile.segments {
        let len = s.length.as_secs_f64();
        let mass = (s.from + s.to) / 2.0 * len;
        if m <= mass && mass > 0.0 {
            let slope = if len > 0.0 {
                (s.to - s.from) / len
            } else {
                0.0
            };
            let tau = if slope.abs() < 1e-12 {
                m / s.from
            } else {
                // from·τ + slope/2·τ² = m
                (-s.from + (s.from * s.from + 2.0 * slope * m).max(0.0).sqrt()) / slope
            };
            return Some(start + tau.clamp(0.0, len));
        }
        m -= mass;
        start += len;
    }
    let last = profile.segments.last().map_or(0.0, |s| s.to);
    (last > 0.0).then(|| start + m / last)
}

/// Who arrives: seeded draws over the population's mixes.
#[derive(Debug)]
pub struct Draws {
    rng: StdRng,
}

/// One arriving party's attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct PartySpec {
    pub game_mode: String,
    pub size: u32,
    pub mmr: Option<u32>,
    pub region: Option<String>,
}

impl Draws {
    pub fn new(seed: u64) -> Self {
        Draws {
            rng: StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15),
        }
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Draws one party.
    pub fn party(&mut self, population: &Population) -> PartySpec {
        let mode =
            pick(&mut self.rng, &population.modes, |m| m.weight).unwrap_or(&population.modes[0]);
        let size = pick(&mut self.rng, &mode.party_sizes, |(_, w)| *w).map_or(1, |(s, _)| *s);
        let mmr = population.mmr.map(|d| draw_mmr(&mut self.rng, d));
        let region = pick(&mut self.rng, &population.regions, |(_, w)| *w).map(|(r, _)| r.clone());
        PartySpec {
            game_mode: mode.name.clone(),
            size,
            mmr,
            region,
        }
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.r#gen::<f64>() < p
    }

    /// A uniform fraction in `[0, 1)`.
    pub fn fraction(&mut self) -> f64 {
        self.rng.r#gen()
    }
}

/// A weighted pick; `None` for an empty list.
fn pick<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> f64) -> Option<&'a T> {
    let total: f64 = items.iter().map(&weight).sum();
    if items.is_empty() || total <= 0.0 {
        return items.first();
    }
    let mut x = rng.r#gen::<f64>() * total;
    for item in items {
        x -= weight(item);
        if x < 0.0 {
            return Some(item);
        }
    }
    items.last()
}

fn draw_mmr(rng: &mut StdRng, d: MmrDistribution) -> u32 {
    match d {
        MmrDistribution::Constant { value } => value,
        MmrDistribution::Uniform { min, max } => rng.gen_range(min..=max),
        MmrDistribution::Normal {
            mean,
            stddev,
            min,
            max,
        } => {
            // Box–Muller; 1 - U is in (0, 1].
            let u1 = 1.0 - rng.r#gen::<f64>();
            let u2 = rng.r#gen::<f64>();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let v = (mean + stddev * z).round();
            v.clamp(f64::from(min), f64::from(max)) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::{ModeMix, RateSegment};

    fn seg(secs: u64, from: f64, to: f64) -> RateSegment {
        RateSegment {
            length: Duration::from_secs(secs),
            from,
            to,
        }
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let mut s = ArrivalSchedule::new(RateProfile::constant(10.0), false, 1);
        let times = s.take_until(10.0);
        assert_eq!(times.len(), 100);
        assert!((times[0] - 0.05).abs() < 1e-9);
        for pair in times.windows(2) {
            assert!((pair[1] - pair[0] - 0.1).abs() < 1e-9);
        }
        assert_eq!(s.rate_at(3.0), 10.0);
    }

    #[test]
    fn ramp_follows_the_integral() {
        // 0 → 100/s over 10 s, then flat at 100/s for 10 s: 500 + 1000 arrivals.
        let profile = RateProfile {
            segments: vec![seg(10, 0.0, 100.0), seg(10, 100.0, 100.0)],
        };
        let mut s = ArrivalSchedule::new(profile.clone(), false, 1);
        let times = s.take_until(20.0);
        assert_eq!(times.len(), 1500);
        // Half the first stage's mass (250) arrives by t = 10/√2.
        let by = times.iter().filter(|&&t| t < 10.0 / 2f64.sqrt()).count();
        assert!((by as i64 - 250).abs() <= 1, "{by}");
        // Arrivals get denser as the rate climbs.
        assert!(times[10] - times[9] > times[200] - times[199]);
        assert_eq!(s.rate_at(5.0), 50.0);
        assert_eq!(profile_time_of_mass(&profile, 500.0), Some(10.0));
    }

    #[test]
    fn poisson_mean_is_within_tolerance_and_seeded() {
        let profile = RateProfile::constant(200.0);
        let a = ArrivalSchedule::new(profile.clone(), true, 42).take_until(100.0);
        let b = ArrivalSchedule::new(profile.clone(), true, 42).take_until(100.0);
        let c = ArrivalSchedule::new(profile, true, 43).take_until(100.0);
        assert_eq!(a, b, "same seed, same schedule");
        assert_ne!(a, c);
        // 20,000 expected; the standard deviation is √20000 ≈ 141.
        assert!(
            (a.len() as f64 - 20_000.0).abs() < 5.0 * 141.0,
            "{}",
            a.len()
        );
        let gaps: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 0.005).abs() < 0.0002, "{mean}");
        // Exponential gaps: the coefficient of variation is about 1.
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv = var.sqrt() / mean;
        assert!((cv - 1.0).abs() < 0.05, "{cv}");
    }

    #[test]
    fn spike_concentrates_arrivals() {
        // 2/s, 50/s for 2 s from t = 4, then 2/s.
        let profile = RateProfile {
            segments: vec![seg(4, 2.0, 2.0), seg(2, 50.0, 50.0), seg(1, 2.0, 2.0)],
        };
        let times = ArrivalSchedule::new(profile, false, 1).take_until(10.0);
        let during = times.iter().filter(|&&t| (4.0..6.0).contains(&t)).count();
        let before = times.iter().filter(|&&t| t < 4.0).count();
        let after = times.iter().filter(|&&t| t >= 6.0).count();
        assert_eq!((before, during, after), (8, 100, 8));
    }

    #[test]
    fn rate_changes_apply_from_now() {
        let mut s = ArrivalSchedule::new(RateProfile::constant(1.0), false, 1);
        assert_eq!(s.next_arrival(), Some(0.5));
        s.set_rate(2.0, 10.0);
        let next = s.next_arrival().expect("arrival");
        assert!((next - 2.05).abs() < 1e-9, "{next}");
        assert_eq!(s.rate_at(100.0), 10.0);
        s.set_rate(3.0, 0.0);
        assert_eq!(s.next_arrival(), None);
    }

    #[test]
    fn draws_follow_the_weights() {
        let population = Population {
            arrival: crate::scenario::ArrivalPlan::Closed {
                players: 1,
                ramp_up: Duration::ZERO,
                think: Duration::ZERO,
            },
            modes: vec![
                ModeMix {
                    name: "1v1".into(),
                    weight: 3.0,
                    party_sizes: vec![(1, 1.0)],
                },
                ModeMix {
                    name: "5v5".into(),
                    weight: 1.0,
                    party_sizes: vec![(1, 1.0), (5, 1.0)],
                },
            ],
            mmr: Some(MmrDistribution::Normal {
                mean: 1500.0,
                stddev: 100.0,
                min: 1000,
                max: 2000,
            }),
            regions: vec![("eu".into(), 1.0)],
            behaviour: crate::scenario::Behaviour {
                flow: crate::scenario::Flow::Tutorial,
                login: crate::scenario::LoginFlow::Password,
                request_timeout: Duration::from_secs(1),
                found_grace: Duration::ZERO,
                linger: Duration::ZERO,
                match_length: None,
                cancel: None,
                drop_socket: None,
                retry_on_timeout: None,
                verify_server: 0.0,
            },
        };
        let mut d = Draws::new(5);
        let parties: Vec<_> = (0..4000).map(|_| d.party(&population)).collect();
        let fives = parties.iter().filter(|p| p.game_mode == "5v5").count();
        assert!((fives as i64 - 1000).abs() < 120, "{fives}");
        assert!(parties.iter().all(|p| p.region.as_deref() == Some("eu")));
        assert!(
            parties
                .iter()
                .all(|p| (1000..=2000).contains(&p.mmr.unwrap_or(0)))
        );
        let mean = parties
            .iter()
            .map(|p| f64::from(p.mmr.unwrap_or(0)))
            .sum::<f64>()
            / 4000.0;
        assert!((mean - 1500.0).abs() < 10.0, "{mean}");
        assert!(parties.iter().any(|p| p.size == 5));
        assert!(
            parties
                .iter()
                .filter(|p| p.game_mode == "1v1")
                .all(|p| p.size == 1)
        );
    }
}
