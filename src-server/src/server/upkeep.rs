//! The teacher's server's periodic upkeep: roster updates coalesced per interval, metrics, and
//! forgetting old failed hellos, knocks and held claims.

use super::AppState;

/// Runs the periodic upkeep: roster coalescing, metrics upkeep, forgetting old failed hellos.
pub(super) fn spawn(app: &AppState) {
    let a = app.clone();
    app.host.tracker.spawn(async move {
        let mut tick = tokio::time::interval(a.host.timing.roster_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = a.host.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            a.rooms().flush_rosters();
            n += 1;
            if n.is_multiple_of(50) {
                a.host.metrics.upkeep();
                a.host.prune();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::engine::outbox::{Item, Outbox};
    use crate::protocol::Hello;
    use crate::server::AppState;

    fn hello(role: &str, secret: &str, device: &str) -> Hello {
        let (key, code) =
            if role == "teacher" { (Some(secret.into()), None) } else { (None, Some(secret.into())) };
        Hello {
            v: Some(1.into()),
            role: Some(role.into()),
            key,
            code,
            name: (role == "student").then(|| "Aisha".into()),
            device: Some(device.into()),
            ..Hello::default()
        }
    }

    fn rosters(outbox: &Outbox) -> usize {
        outbox.take().items.iter().filter(|i| matches!(i, Item::Roster(_))).count()
    }

    /// Acks and round trips reach the teacher folded into one roster update per interval (§6: at
    /// most 10 a second), never sooner; a join reaches it at once.
    #[tokio::test(start_paused = true)]
    async fn acks_reach_the_teacher_once_per_roster_interval() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config { data_dir: Some(dir.path().into()), code: Some("482913".into()), ..Config::default() };
        let prepared = crate::server::setup::prepare(&config).unwrap();
        let key = prepared.parts.teacher_key.clone();
        let app = AppState::new(prepared.parts);
        spawn(&app);
        let room = app.room();
        let teacher = room.join(hello("teacher", &key, "teacher-device"), None, false).unwrap();
        let _ = teacher.outbox.take(); // the welcome
        let student = room.join(hello("student", "482913", "student-device-1"), None, false).unwrap();
        assert_eq!(rosters(&teacher.outbox), 1, "a join is sent at once");

        // Let the upkeep's interval start, then ack: nothing until the interval has passed.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let start = tokio::time::Instant::now();
        room.ack(&student.pid, 0, &student.outbox);
        room.rtt(&student.pid, 7);
        tokio::time::sleep_until(start + Duration::from_millis(95)).await;
        assert_eq!(rosters(&teacher.outbox), 0, "acks are held until the roster interval");
        tokio::time::sleep_until(start + Duration::from_millis(101)).await;
        assert_eq!(rosters(&teacher.outbox), 1, "the ack and the round trip arrive as one update");
        app.host.shutdown.cancel();
        app.store.close(Duration::from_secs(1));
    }
}
