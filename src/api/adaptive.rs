//! Finding the rate a server tolerates and staying just under it, for every
//! worker of a run at once: a client-side token bucket whose rate drops
//! multiplicatively when the server throttles (429, or 503 with
//! `Retry-After`) and recovers along a cubic curve while answers succeed, as
//! the AWS SDKs' adaptive retry mode and TCP CUBIC do. Until the first
//! throttle there is no limit; after it, the rate first doubles every half second
//! (slow start) until the next throttle, then follows the cubic.
//!
//! The state is a pure function of the events fed to it and the times they
//! happened, so it is tested without a clock.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Multiplicative decrease on a throttle (to 80%).
const BETA: f64 = 0.8;
/// Cubic scaling constant (requests/s per s³).
const SCALE: f64 = 0.4;
/// Never slower than this.
const MIN_RATE: f64 = 0.5;
/// Throttles closer together than this are one event (the answers to
/// requests that left before the last decrease).
const QUIET: Duration = Duration::from_millis(500);
/// Successes are counted over this window to measure the rate the server allows.
const WINDOW: Duration = Duration::from_secs(1);
/// A throttle is a signal of load only when this share of the last window's
/// answers were throttles (a server that throttles a few requests at random,
/// whatever the load, is not asking everyone to slow down).
const LOAD_SHARE: f64 = 0.05;
/// ...judged over at least this many answers; fewer, and every throttle counts.
const LOAD_SAMPLE: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// No throttle seen: no limit.
    Open,
    /// Throttled once: the rate doubles every half second until the next throttle.
    SlowStart,
    /// Following the cubic curve back to (and past) the rate of the last throttle.
    Cubic,
}

#[derive(Debug)]
pub struct Adaptive {
    phase: Phase,
    /// Requests per second allowed now (meaningless while `Open`).
    rate: f64,
    /// The rate at the last throttle, and when it was.
    last_max: f64,
    last_throttle: Option<Instant>,
    /// Seconds the cubic takes to climb back to `last_max`.
    k: f64,
    /// Successes and throttles in the last `WINDOW`, and when the first
    /// request was seen.
    successes: VecDeque<Instant>,
    throttles: VecDeque<Instant>,
    started: Option<Instant>,
    /// The bucket: tokens now, at `refilled`.
    tokens: f64,
    refilled: Option<Instant>,
    /// The hard ceiling, `--max-rps`.
    ceiling: Option<f64>,
}

impl Adaptive {
    pub fn new(ceiling: Option<f64>) -> Adaptive {
        Adaptive {
            phase: Phase::Open,
            rate: f64::INFINITY,
            last_max: 0.0,
            last_throttle: None,
            k: 0.0,
            successes: VecDeque::new(),
            throttles: VecDeque::new(),
            started: None,
            tokens: 1.0,
            refilled: None,
            ceiling: ceiling.filter(|r| *r > 0.0),
        }
    }

    /// The rate in force: the adaptive one, never above the ceiling.
    pub fn rate(&self) -> Option<f64> {
        let adaptive = (self.phase != Phase::Open).then_some(self.rate);
        match (adaptive, self.ceiling) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        }
    }

    /// Takes a token for a request about to leave at `now`, or says how long
    /// to wait for one (then call again).
    pub fn acquire(&mut self, now: Instant) -> Option<Duration> {
        self.started.get_or_insert(now);
        let rate = self.rate()?;
        // A small bucket: smooth pacing, a few requests of burst.
        let capacity = (rate / 10.0).clamp(1.0, 10.0);
        if let Some(at) = self.refilled {
            self.tokens = (self.tokens + rate * now.duration_since(at).as_secs_f64()).min(capacity);
        }
        self.refilled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return None;
        }
        Some(Duration::from_secs_f64((1.0 - self.tokens) / rate))
    }

    /// The rate the server let through lately: successes over the last
    /// second (over the time since the first request when that is shorter).
    fn measured(&self, now: Instant) -> f64 {
        let span = self
            .started
            .map(|s| now.duration_since(s))
            .unwrap_or(WINDOW)
            .clamp(Duration::from_millis(250), WINDOW);
        self.successes.len() as f64 / span.as_secs_f64()
    }

    fn forget_old(&mut self, now: Instant) {
        for q in [&mut self.successes, &mut self.throttles] {
            while q.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
                q.pop_front();
            }
        }
    }

    /// An answer that was not a throttle.
    pub fn success(&mut self, now: Instant) {
        self.successes.push_back(now);
        self.forget_old(now);
        let Some(since) = self
            .last_throttle
            .map(|t| now.duration_since(t).as_secs_f64())
        else {
            return;
        };
        match self.phase {
            Phase::Open => {}
            Phase::SlowStart => {
                let base = self.last_max * BETA;
                // Doubling every half second: the first estimate is only a guess.
                self.rate = base * 4f64.powf(since);
            }
            Phase::Cubic => {
                let cubic = SCALE * (since - self.k).powi(3) + self.last_max;
                // Not far above what is actually being used (an idle run must
                // not bank a rate it never tested).
                let used = 2.0 * self.measured(now).max(MIN_RATE);
                self.rate = cubic.min(used).max(MIN_RATE);
            }
        }
    }

    /// A throttle (429, or 503 with `Retry-After`). Returns whether it lowered
    /// the rate (throttles within `QUIET` of the last one do not).
    pub fn throttled(&mut self, now: Instant) -> bool {
        self.started.get_or_insert(now);
        self.throttles.push_back(now);
        self.forget_old(now);
        let answers = self.successes.len() + self.throttles.len();
        let share = self.throttles.len() as f64 / answers as f64;
        if answers >= LOAD_SAMPLE && share < LOAD_SHARE {
            return false;
        }
        if self
            .last_throttle
            .is_some_and(|t| now.duration_since(t) < QUIET)
        {
            return false;
        }
        let measured = self.measured(now).max(MIN_RATE);
        let at = match self.phase {
            Phase::Open => measured,
            _ => self.rate.min(measured.max(self.rate * BETA)),
        };
        self.last_max = at.max(MIN_RATE);
        self.rate = (self.last_max * BETA).max(MIN_RATE);
        self.k = (self.last_max * (1.0 - BETA) / SCALE).cbrt();
        self.phase = if self.phase == Phase::Open {
            Phase::SlowStart
        } else {
            Phase::Cubic
        };
        self.last_throttle = Some(now);
        self.tokens = self.tokens.min(1.0);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that lets `allowed` requests through per second (a bucket of
    /// `burst`), and a client with unlimited demand: the adaptive rate settles
    /// just under the server's, with few throttles.
    fn simulate(allowed: f64, burst: f64, seconds: f64) -> (f64, f64) {
        let start = Instant::now();
        let mut a = Adaptive::new(None);
        let mut server_tokens = burst;
        let mut server_at = start;
        let (mut ok, mut throttled) = (0u64, 0u64);
        let mut now = start;
        let end = start + Duration::from_secs_f64(seconds);
        // 32 workers with 20 ms round trips at most: 1,600 attempts per second.
        let tick = Duration::from_micros(625);
        while now < end {
            match a.acquire(now) {
                Some(wait) => now += wait.max(Duration::from_micros(1)).min(tick),
                None => {
                    server_tokens = (server_tokens
                        + allowed * now.duration_since(server_at).as_secs_f64())
                    .min(burst);
                    server_at = now;
                    let answered = now + Duration::from_millis(20);
                    if server_tokens >= 1.0 {
                        server_tokens -= 1.0;
                        ok += 1;
                        a.success(answered);
                    } else {
                        throttled += 1;
                        a.throttled(answered);
                    }
                    now += tick;
                }
            }
        }
        let rate = ok as f64 / seconds;
        (rate, throttled as f64 / (ok + throttled) as f64)
    }

    #[test]
    fn settles_just_under_the_servers_rate_with_few_throttles() {
        for (allowed, secs) in [(20.0, 60.0), (100.0, 60.0), (400.0, 60.0), (100.0, 15.0)] {
            let (rate, throttled) = simulate(allowed, (allowed / 10.0).max(1.0), secs);
            assert!(
                rate >= allowed * 0.85 && rate <= allowed * 1.01,
                "allowed {allowed}: got {rate:.1}/s"
            );
            assert!(
                throttled <= 0.05,
                "allowed {allowed}: {:.1}% throttled",
                throttled * 100.0
            );
        }
    }

    /// A server with no limit that throttles 2% of requests at random: the
    /// client is not talked down to a crawl.
    #[test]
    fn random_throttles_are_not_taken_for_load() {
        let start = Instant::now();
        let mut a = Adaptive::new(None);
        let mut now = start;
        let (mut sent, mut n) = (0u64, 0u64);
        let end = start + Duration::from_secs(30);
        let tick = Duration::from_micros(625);
        while now < end {
            match a.acquire(now) {
                Some(wait) => now += wait.max(Duration::from_micros(1)).min(tick),
                None => {
                    n += 1;
                    sent += 1;
                    let answered = now + Duration::from_millis(20);
                    // Every 50th request, as regular as random would be on average.
                    if n % 50 == 0 {
                        a.throttled(answered);
                    } else {
                        a.success(answered);
                    }
                    now += tick;
                }
            }
        }
        let rate = sent as f64 / 30.0;
        assert!(rate > 1200.0, "{rate:.0}/s of 1,600 possible");
    }

    #[test]
    fn the_ceiling_always_holds_and_open_means_unlimited() {
        let mut a = Adaptive::new(Some(10.0));
        let now = Instant::now();
        assert_eq!(a.rate(), Some(10.0));
        a.throttled(now);
        assert!(a.rate().unwrap() <= 10.0);
        let open = Adaptive::new(None);
        assert_eq!(open.rate(), None);
    }

    #[test]
    fn throttles_in_a_burst_lower_the_rate_once() {
        let mut a = Adaptive::new(None);
        let t0 = Instant::now();
        for i in 0..50 {
            a.success(t0 + Duration::from_millis(i * 10));
        }
        let t1 = t0 + Duration::from_millis(500);
        // One or two throttles in fifty answers are noise; a burst is load.
        assert!(!a.throttled(t1));
        assert!(!a.throttled(t1));
        assert!(a.throttled(t1), "the third makes 3 of 53: load");
        let after_first = a.rate().unwrap();
        for i in 1..20 {
            assert!(!a.throttled(t1 + Duration::from_millis(i * 10)));
        }
        assert_eq!(a.rate().unwrap(), after_first);
    }
}
