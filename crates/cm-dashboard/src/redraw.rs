//! When the interactive loop draws: when something on screen changed (the
//! app's dirty flag), or a second after the last frame so that the clocks on
//! screen ("0.4 s ago", staleness) move on; never sooner than [`FRAME_GAP`]
//! after the last frame, however much arrives. Time comes in as an argument.

use std::time::{Duration, Instant};

use crate::app::App;

/// The shortest time between two frames: at most 20 frames a second.
pub const FRAME_GAP: Duration = Duration::from_millis(50);
/// The longest time between two frames: the clocks on screen count seconds.
pub const CLOCK: Duration = Duration::from_secs(1);

/// The frame schedule of the interactive loop.
#[derive(Debug, Default)]
pub struct Redraw {
    last: Option<Instant>,
}

impl Redraw {
    /// Whether to draw `app` at `now`.
    pub fn due(&self, app: &App, now: Instant) -> bool {
        let Some(last) = self.last else { return true };
        let since = now.saturating_duration_since(last);
        since >= FRAME_GAP && (app.dirty || since >= CLOCK)
    }

    /// When the loop should look again if no message comes first.
    pub fn next(&self, app: &App, now: Instant) -> Instant {
        match self.last {
            None => now,
            Some(last) => last + if app.dirty { FRAME_GAP } else { CLOCK },
        }
    }

    /// Records that `app` was drawn at `now`.
    pub fn drew(&mut self, app: &mut App, now: Instant) {
        self.last = Some(now);
        app.dirty = false;
    }
}

#[cfg(test)]
mod tests {
    use cm_proto::HostSnapshot;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::app::{Connection, HostEntry, Msg};

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn fleet() -> App {
        let hosts = ["srv01", "srv02"].iter().map(|n| HostEntry::new(n, "server", Connection::Connecting)).collect();
        App::remote(hosts, 0)
    }

    fn snapshot(host: usize) -> Msg {
        Msg::Snapshot { host, snapshot: Box::new(HostSnapshot::default()), received_ms: 0 }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_frame_is_drawn_at_once_then_only_when_something_changed() {
        let (mut app, mut redraw, t0) = (fleet(), Redraw::default(), Instant::now());
        assert!(redraw.due(&app, t0));
        redraw.drew(&mut app, t0);
        for ms in [50, 200, 999] {
            assert!(!redraw.due(&app, t0 + ms * MS), "nothing changed at {ms} ms");
        }
        assert_eq!(redraw.next(&app, t0), t0 + CLOCK, "idle: wake for the clock only");

        app.update(key('x')); // bound to nothing
        assert!(!redraw.due(&app, t0 + 300 * MS), "a key that changes nothing draws nothing");

        app.update(snapshot(1));
        assert!(redraw.due(&app, t0 + 300 * MS), "a snapshot arrived");
        redraw.drew(&mut app, t0 + 300 * MS);
        assert!(!redraw.due(&app, t0 + 400 * MS));

        app.update(key('j'));
        assert!(redraw.due(&app, t0 + 400 * MS), "a key moved the selection");
        redraw.drew(&mut app, t0 + 400 * MS);

        let down = || Msg::Connection {
            host: 0,
            connection: Connection::Unreachable { reason: "timed out".into() },
            interval_ms: None,
        };
        app.update(down());
        assert!(redraw.due(&app, t0 + 500 * MS), "a connection changed");
        redraw.drew(&mut app, t0 + 500 * MS);
        app.update(down());
        assert!(!redraw.due(&app, t0 + 600 * MS), "still down for the same reason: nothing new");
        app.update(Msg::Resize { cols: 80, rows: 24 });
        assert!(redraw.due(&app, t0 + 600 * MS), "the terminal was resized");
    }

    #[test]
    fn the_clock_draws_once_a_second_when_nothing_else_does() {
        let (mut app, mut redraw, t0) = (fleet(), Redraw::default(), Instant::now());
        redraw.drew(&mut app, t0);
        let mut frames = 0;
        // Ten seconds looked at every 10 ms, as a busy loop would.
        for ms in (10..=10_000).step_by(10) {
            let now = t0 + ms * MS;
            app.update(Msg::Tick(ms as u64)); // the clock alone changes nothing drawn
            if redraw.due(&app, now) {
                frames += 1;
                redraw.drew(&mut app, now);
            }
        }
        assert_eq!(frames, 10);
    }

    #[test]
    fn a_flood_of_snapshots_draws_at_most_at_the_frame_rate() {
        let (mut app, mut redraw, t0) = (fleet(), Redraw::default(), Instant::now());
        redraw.drew(&mut app, t0);
        let mut frames = 0;
        // A snapshot every millisecond for a little over a second.
        for ms in 1..=1_020 {
            let now = t0 + ms * MS;
            app.update(snapshot(ms as usize % 2));
            if redraw.due(&app, now) {
                frames += 1;
                redraw.drew(&mut app, now);
            }
        }
        assert_eq!(frames, (CLOCK.as_millis() / FRAME_GAP.as_millis()) as usize);
        assert!(app.dirty, "the last snapshots wait for the next frame");
        assert_eq!(redraw.next(&app, t0 + 1_020 * MS), t0 + 1_000 * MS + FRAME_GAP);
    }
}
