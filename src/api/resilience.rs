//! Staying polite and robust under load: one adaptive rate shared by every
//! request of a run (see `adaptive`), a pause that a long `Retry-After`
//! imposes on all of them, and retries with exponential backoff and jitter.

use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff; it doubles with each retry.
    pub base_delay: Duration,
    /// No single wait is longer, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Wait before retry number `retry` (1-based): half the exponential delay
    /// fixed, half random, so that many workers do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter = rand::rng().random_range(0..=half.as_micros() as u64);
        half + Duration::from_micros(jitter)
    }
}

/// Counters of one run, for its summary line.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.throttled.load(Ordering::Relaxed),
        )
    }
}

/// Admission for every request of a run: first any pause a long
/// `Retry-After` imposed, then a token from the adaptive rate (which finds the
/// rate the server tolerates, under `--max-rps` as a hard ceiling).
#[derive(Debug)]
pub struct Gate {
    rate: Mutex<super::adaptive::Adaptive>,
    paused_until: Mutex<Option<Instant>>,
}

impl Gate {
    pub fn new(max_rps: Option<f64>) -> Gate {
        Gate {
            rate: Mutex::new(super::adaptive::Adaptive::new(max_rps)),
            paused_until: Mutex::new(None),
        }
    }

    pub async fn admit(&self) {
        loop {
            let pause = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match pause {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => break,
            }
        }
        loop {
            let wait = self
                .rate
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .acquire(Instant::now());
            match wait {
                None => return,
                Some(w) => tokio::time::sleep(w).await,
            }
        }
    }

    /// The server answered (anything but a throttle).
    pub fn answered(&self) {
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .success(Instant::now());
    }

    /// The server throttled: the shared rate comes down.
    pub fn throttled(&self) {
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .throttled(Instant::now());
    }

    /// The rate in force, if any (for the summary and tests).
    pub fn rate(&self) -> Option<f64> {
        self.rate.lock().unwrap_or_else(|e| e.into_inner()).rate()
    }

    /// Every request waits until `until` (a long `Retry-After`).
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            assert!(p.backoff(12) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn gate_paces_and_pauses() {
        let g = Gate::new(Some(10.0));
        let start = Instant::now();
        for _ in 0..5 {
            g.admit().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(400));
        g.pause(Duration::from_secs(2));
        let before = Instant::now();
        g.admit().await;
        assert!(before.elapsed() >= Duration::from_secs(2));
    }
}
