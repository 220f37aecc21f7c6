//! Test sizes that a developer can raise from the environment (the full-size fault and
//! load runs), and a small seeded random generator whose seed is printed, so a failure
//! at a random moment can be replayed.

use std::time::{SystemTime, UNIX_EPOCH};

/// The number in the environment variable `name`, or `default` when it is unset or
/// empty; panics on anything else, so a typo does not silently run the small size.
pub fn size_from_env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => {
            let text = text.trim().replace('_', "");
            text.parse()
                .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number"))
        }
        _ => default,
    }
}

/// xorshift64*: not for cryptography, only to pick moments and mixes reproducibly.
#[derive(Debug, Clone)]
pub struct Rng {
    seed: u64,
    state: u64,
}

impl Rng {
    /// Seeded from the environment variable `seed_variable` if set, else from the clock.
    /// Print `seed()` so that a failure can be replayed with the same choices.
    pub fn from_env(seed_variable: &str) -> Self {
        let clock = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        };
        let seed = match std::env::var(seed_variable) {
            Ok(text) if !text.trim().is_empty() => text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{seed_variable}={text:?} is not a number")),
            _ => clock(),
        };
        Self::new(seed)
    }

    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            state: seed.max(1),
        }
    }

    /// The seed this generator started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..high`.
    pub fn below(&mut self, high: u64) -> u64 {
        assert!(high > 0);
        self.next_u64() % high
    }

    /// A number in `low..high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low)
    }
}
