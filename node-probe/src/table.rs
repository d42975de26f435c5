//! The detector table the event readers look detectors up in, replaced whole on reload.
//!
//! Events name a detector by its kernel index, which [`Detector::index`] holds; a detector
//! keeps its index for as long as it runs, across reloads, so an object that keeps running
//! keeps reporting under the right name. Readers take a snapshot per event (one uncontended
//! read lock and an `Arc` clone), so a reload never waits for them.

use std::sync::{Arc, PoisonError, RwLock};

use crate::detector::Detector;

/// The current detectors, shared by every reader and scanning task.
#[derive(Debug)]
pub struct Table(RwLock<Arc<Vec<Detector>>>);

impl Table {
    pub fn new(detectors: Vec<Detector>) -> Table {
        Table(RwLock::new(Arc::new(detectors)))
    }

    /// The detectors as of now.
    pub fn current(&self) -> Arc<Vec<Detector>> {
        // A panic while holding the lock cannot leave the `Arc` half-written.
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes `detectors` the table every later lookup sees.
    pub fn replace(&self, detectors: Vec<Detector>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(detectors);
    }
}

/// The detector with kernel index `index`.
pub fn find(detectors: &[Detector], index: u32) -> Option<&Detector> {
    detectors.iter().find(|detector| detector.index == index)
}
