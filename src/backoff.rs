//! One backoff for every loop that waits and tries again: a store that keeps failing, an idle
//! slot polling for work, a write DynamoDB left unprocessed, a throttled call. A pause that
//! doubles up to a ceiling, `reset` when things go well, and jitter, so that a fleet that
//! failed together does not try again together. Randomness comes from one place, fastrand
//! (already in the tree through aws-config), seeded per thread from the OS.

use std::time::Duration;

/// Pauses from `first`, doubling up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    jittered: bool,
}

impl Backoff {
    /// Each pause a random share, between half and all, of a ceiling that doubles.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
            jittered: true,
        }
    }

    /// Without jitter: for an idle slot's polls, whose pauses are what a request budget is
    /// judged by, and which a fleet does not take in step anyway (each slot finds its step
    /// empty at its own moment).
    pub fn steady(first: Duration, max: Duration) -> Self {
        Self {
            jittered: false,
            ..Self::new(first, max)
        }
    }

    /// The pause to take now; the ceiling of the next one doubles.
    pub fn next_pause(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(self.max);
        if self.jittered {
            jitter(ceiling)
        } else {
            ceiling
        }
    }

    /// The ceiling of the next pause (what a deadline must leave room for).
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// Back to the first pause: the trouble passed.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A random pause between half of `d` and `d`.
pub fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    half + half.mul_f64(fastrand::f64())
}

/// A random number below `n` (0 when `n` is 0).
pub fn below(n: u64) -> u64 {
    if n == 0 { 0 } else { fastrand::u64(..n) }
}

/// A random seed, different on every machine and process.
pub fn seed() -> u64 {
    fastrand::u64(..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_its_ceiling_and_starts_over_on_reset() {
        let ms = Duration::from_millis;
        let mut steady = Backoff::steady(ms(250), ms(1000));
        let pauses: Vec<_> = (0..4).map(|_| steady.next_pause()).collect();
        assert_eq!(pauses, [ms(250), ms(500), ms(1000), ms(1000)]);
        steady.reset();
        assert_eq!(steady.next_pause(), ms(250));
        let mut jittered = Backoff::new(ms(400), ms(1600));
        for ceiling in [400, 800, 1600, 1600] {
            let p = jittered.next_pause();
            assert!(
                p >= ms(ceiling / 2) && p <= ms(ceiling),
                "{p:?} of {ceiling}"
            );
        }
    }
}
