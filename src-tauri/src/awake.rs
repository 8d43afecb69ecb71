//! Keeping the device's screen on during a lesson: a tablet that dims after two minutes of reading
//! is a student who misses a page turn, and a teacher's laptop that sleeps ends the lesson for
//! everyone. The teacher app holds it while it serves a lesson; the student view asks for it while
//! it follows one (`stay_awake`). It is the operating system's to grant (a desktop's screensaver
//! inhibitor over D-Bus on Linux, a power assertion on macOS, `SetThreadExecutionState` on
//! Windows, through `keepawake`); where it cannot be had, the reason is kept for the view to show.

use std::sync::Mutex;

/// One hold on the screen, taken and released as the lesson goes (clones share it).
#[derive(Default, Clone)]
pub struct Awake {
    held: std::sync::Arc<Mutex<Option<keepawake::KeepAwake>>>,
}

impl std::fmt::Debug for Awake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Awake").field("held", &self.held.lock().map(|h| h.is_some()).ok()).finish()
    }
}

impl Awake {
    /// Keeps the screen on (and the device from sleeping while idle) until [`Awake::release`]; `Err`
    /// says why the system would not. Taking it again while held keeps the one hold.
    pub fn hold(&self, why: &str) -> Result<(), String> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let why = why.to_string();
        // On a thread of its own: on Linux it speaks D-Bus with blocking calls, which must not run
        // on an async runtime's thread. Callers on one use `spawn_blocking` around this.
        let taken = std::thread::spawn(move || {
            keepawake::Builder::default()
                .display(true)
                .idle(true)
                .reason(why)
                .app_name("Lectern")
                .app_reverse_domain("org.lectern.app")
                .create()
                .map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the system's power service failed".into()));
        match taken {
            Ok(awake) => {
                *held = Some(awake);
                Ok(())
            }
            Err(e) => {
                tracing::warn!("cannot keep the screen on: {e}");
                Err(e)
            }
        }
    }

    /// Lets the screen dim and the device sleep as it would.
    pub fn release(&self) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Whether the screen is held on now.
    pub fn held(&self) -> bool {
        self.held.lock().map(|h| h.is_some()).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On this machine (no desktop session in CI) the system may refuse: then the reason is given and
    /// nothing is held; where it grants the hold, it is held once and released.
    #[test]
    fn a_hold_is_taken_once_or_refused_with_a_reason_and_released() {
        let awake = Awake::default();
        match awake.hold("a test") {
            Ok(()) => {
                assert!(awake.held());
                assert!(awake.hold("again").is_ok(), "a second hold keeps the first");
                awake.release();
                assert!(!awake.held());
            }
            Err(reason) => {
                assert!(!reason.trim().is_empty(), "a refusal says why");
                assert!(!awake.held());
            }
        }
    }
}
