//! The engine's one seam for randomness (backoff jitter, request-id salts).
//! Tests pass a [`Seeded`] source so schedules are reproducible; production
//! uses [`Seeded::from_os`].

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A source of uniform numbers in `[0, 1)`.
pub trait Entropy: Send + std::fmt::Debug {
    /// A uniform draw in `[0, 1)`.
    fn unit(&mut self) -> f64;
}

/// A seeded ChaCha8 generator.
#[derive(Debug, Clone)]
pub struct Seeded(ChaCha8Rng);

impl Seeded {
    /// Reproducible draws from `seed`.
    pub fn new(seed: u64) -> Seeded {
        Seeded(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Seeded from the operating system.
    pub fn from_os() -> Seeded {
        Seeded(ChaCha8Rng::from_os_rng())
    }
}

impl Entropy for Seeded {
    fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }
}
