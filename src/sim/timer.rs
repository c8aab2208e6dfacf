//! Sleeps that end on time, for the emulator's latency.
//!
//! tokio's timer counts whole milliseconds and rounds each deadline up, and
//! its thread wakes from a millisecond poll timeout: a 20 ms sleep lasts 21 to
//! 22 ms. An emulator whose `--latency-ms 20` adds 21.6 ms makes every client
//! look 8% slower than it is. Here one thread waits for the nearest deadline
//! on a condition variable (a futex with a nanosecond timeout) and wakes each
//! sleeper when its time comes.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::oneshot;

pub struct Timer {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    closed: bool,
}

struct Entry {
    at: Instant,
    seq: u64,
    done: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Inner {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes whoever is due, then waits for the next deadline or a nearer one.
    fn run(&self) {
        let mut q = self.queue();
        while !q.closed {
            let now = Instant::now();
            while q.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
                if let Some(Reverse(e)) = q.heap.pop() {
                    let _ = e.done.send(());
                }
            }
            q = match q.heap.peek() {
                Some(Reverse(e)) => {
                    let wait = e.at - now;
                    self.wake
                        .wait_timeout(q, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

impl Timer {
    pub fn new() -> Timer {
        let inner = Arc::new(Inner {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let worker = inner.clone();
        std::thread::Builder::new()
            .name("sim-timer".into())
            .spawn(move || worker.run())
            .expect("cannot start the emulator's timer thread");
        Timer { inner }
    }

    /// Returns at `at`, not before (and, unlike tokio's sleep, within tens of
    /// microseconds after). The sleep is registered at once; the future does
    /// not borrow the timer.
    pub fn sleep_until(&self, at: Instant) -> impl std::future::Future<Output = ()> + 'static {
        let woken = (at > Instant::now()).then(|| {
            let (done, woken) = oneshot::channel();
            let mut q = self.inner.queue();
            q.seq += 1;
            let seq = q.seq;
            let nearest = q.heap.peek().is_none_or(|Reverse(e)| at < e.at);
            q.heap.push(Reverse(Entry { at, seq, done }));
            if nearest {
                self.inner.wake.notify_one();
            }
            woken
        });
        async move {
            // An error means the timer went away: the emulator is stopping.
            if let Some(w) = woken {
                let _ = w.await;
            }
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.inner.queue().closed = true;
        self.inner.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::Timer;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_sleeper_wakes_and_none_early() {
        let timer = Arc::new(Timer::new());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..60u64 {
            let timer = timer.clone();
            // Deadlines out of order, some equal, some already past.
            let at = start + Duration::from_micros((i * 7919) % 15_000);
            tasks.push(tokio::spawn(async move {
                timer.sleep_until(at).await;
                (at, Instant::now())
            }));
        }
        for t in tasks {
            let (at, woke) = t.await.unwrap();
            assert!(woke >= at, "woke {:?} early", at - woke);
        }
    }

    #[tokio::test]
    async fn a_dropped_timer_lets_its_sleepers_go() {
        let timer = Timer::new();
        let far = Instant::now() + Duration::from_secs(3600);
        let sleeping = timer.sleep_until(far);
        drop(timer);
        tokio::time::timeout(Duration::from_secs(10), sleeping)
            .await
            .expect("a sleeper outlived its timer");
    }
}
