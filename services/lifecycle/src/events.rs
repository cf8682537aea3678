//! What to tell PUB replicas after a change, so no cached decision outlives it (see
//! `racetrack_events`).

pub use racetrack_events::Event;

use crate::state::AppState;

/// A subject's tokens, permissions or access changed.
pub fn subject_changed(state: &AppState, subject_id: &str) {
    state.events.publish(Event::Subject {
        subject_id: subject_id.to_string(),
    });
}

/// A fatman's route (address, status, version set) or public endpoints changed.
pub fn fatman_changed(state: &AppState, name: &str) {
    state.events.publish(Event::Fatman {
        name: name.to_string(),
    });
}

/// Many subjects changed at once.
pub fn everything_changed(state: &AppState) {
    state.events.publish(Event::All);
}
