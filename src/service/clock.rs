//! The time the service decides expiry by. In production it is the
//! system's; a test gives the service a manual clock and moves it forward,
//! so that expiry is tested by advancing time, not by sleeping (kanidm
//! passes the current time into every OAuth2 operation for the same end).
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Where the service reads the current time.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// `SystemTime::now()`.
    #[default]
    System,
    /// A time that moves only when told to.
    Manual(Arc<ManualClock>),
}

impl Clock {
    /// A manual clock starting at the system's time, and the handle that
    /// moves it.
    pub fn manual() -> (Clock, Arc<ManualClock>) {
        let handle = Arc::new(ManualClock::new(SystemTime::now()));
        (Clock::Manual(handle.clone()), handle)
    }

    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Manual(clock) => clock.now(),
        }
    }
}

/// A clock for tests: it stands still until advanced.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    pub fn now(&self) -> SystemTime {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let (clock, handle) = Clock::manual();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        handle.advance(Duration::from_secs(5));
        assert_eq!(clock.now(), start + Duration::from_secs(5));
    }
}
