//! The alert journal: every alert transition, and the outbox of
//! notifications, in the history file.
//!
//! A transition and the notifications it causes are written in one
//! transaction, so after a crash either both are there or neither is: the
//! engine takes up what was firing from the events, and the notifier sends
//! what is unsent from the outbox. A notification is marked sent only after
//! its target accepted it.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use cm_proto::{AlertEvent, AlertState, Status};

use crate::store::{HistoryError, FILE_NAME};

/// A notification waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub id: i64,
    pub route: String,
    /// The target's URL, as configured.
    pub target: String,
    pub created_ms: i64,
    /// What to say, as the notifier wrote it.
    pub item: String,
}

/// What the backup rules know of a job: since when it is watched, and when
/// its last successful run ended (milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupClock {
    pub job: String,
    pub since_ms: u64,
    pub success_ms: Option<u64>,
}

/// The journal's connection: the notifier thread's own, beside the store's.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Critical => "critical",
        Status::Unknown => "unknown",
    }
}

fn parse_status(s: &str) -> Status {
    match s {
        "ok" => Status::Ok,
        "warning" => Status::Warning,
        "critical" => Status::Critical,
        _ => Status::Unknown,
    }
}

/// An `alert_events` row: ts, rule, instance, state, severity, value, reason.
pub(crate) fn event_row(r: &rusqlite::Row) -> rusqlite::Result<AlertEvent> {
    Ok(AlertEvent {
        ts_ms: r.get::<_, i64>(0)?.max(0) as u64,
        rule: r.get(1)?,
        instance: r.get(2)?,
        state: AlertState::parse(&r.get::<_, String>(3)?),
        severity: parse_status(&r.get::<_, String>(4)?),
        value: r.get(5)?,
        reason: r.get(6)?,
    })
}

impl Journal {
    /// Opens the journal of the store in `dir`, which [`crate::Store::open`]
    /// made (or brought to this version) first.
    pub fn open(dir: &Path) -> Result<Journal, HistoryError> {
        let path = dir.join(FILE_NAME);
        let conn = Connection::open(&path).map_err(|e| HistoryError::sqlite(&path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| HistoryError::sqlite(&path, e))?;
        let version: i32 =
            conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| HistoryError::sqlite(&path, e))?;
        if version < 2 {
            return Err(HistoryError::Sqlite { path, why: format!("schema version {version} has no alert journal") });
        }
        Ok(Journal { conn, path })
    }

    /// A journal that lasts as long as the process, for an agent that keeps no history.
    pub fn in_memory() -> Journal {
        let conn = Connection::open_in_memory().expect("SQLite opens an in-memory database");
        conn.execute_batch(crate::store::SCHEMA_2).expect("the journal's tables are valid SQL");
        Journal { conn, path: PathBuf::from(":memory:") }
    }

    /// Whether the journal outlives the process.
    pub fn is_durable(&self) -> bool {
        self.path.as_os_str() != ":memory:"
    }

    fn err(&self, e: rusqlite::Error) -> HistoryError {
        HistoryError::sqlite(&self.path, e)
    }

    /// Stores transitions and the notifications they cause, `(route, target,
    /// item)` each, in one transaction.
    pub fn record(
        &mut self,
        events: &[AlertEvent],
        outbox: &[(String, String, String)],
        now_ms: i64,
    ) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO alert_events (ts, rule, instance, state, severity, value, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(e)?;
            for ev in events {
                insert
                    .execute(params![
                        ev.ts_ms as i64,
                        ev.rule,
                        ev.instance,
                        ev.state.label(),
                        status_label(ev.severity),
                        ev.value,
                        ev.reason
                    ])
                    .map_err(e)?;
            }
            let mut queue = tx
                .prepare_cached("INSERT INTO outbox (route, target, created, item) VALUES (?1, ?2, ?3, ?4)")
                .map_err(e)?;
            for (route, target, item) in outbox {
                queue.execute(params![route, target, now_ms, item]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// The last event of each alert whose last event says firing or flapping.
    pub fn active(&self) -> Result<Vec<AlertEvent>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT ts, rule, instance, state, severity, value, reason FROM alert_events AS e
                 WHERE rowid = (SELECT max(rowid) FROM alert_events WHERE rule = e.rule AND instance = e.instance)
                   AND state IN ('firing', 'flapping')
                 ORDER BY ts",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], event_row).map_err(|e| HistoryError::sqlite(&self.path, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every backup job's clock, as last stored.
    pub fn clocks(&self) -> Result<Vec<BackupClock>, HistoryError> {
        let mut stmt =
            self.conn.prepare("SELECT job, since, success FROM backup_clocks ORDER BY job").map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(BackupClock {
                    job: r.get(0)?,
                    since_ms: r.get::<_, i64>(1)?.max(0) as u64,
                    success_ms: r.get::<_, Option<i64>>(2)?.map(|v| v.max(0) as u64),
                })
            })
            .map_err(|e| HistoryError::sqlite(&self.path, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Stores the clocks of the jobs that moved.
    pub fn set_clocks(&mut self, clocks: &[BackupClock]) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        for c in clocks {
            tx.execute(
                "INSERT OR REPLACE INTO backup_clocks (job, since, success) VALUES (?1, ?2, ?3)",
                params![c.job, c.since_ms as i64, c.success_ms.map(|v| v as i64)],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Every notification not sent yet, oldest first.
    pub fn unsent(&self) -> Result<Vec<Queued>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, route, target, created, item FROM outbox
                 WHERE sent IS NULL AND dropped IS NULL ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Queued {
                    id: r.get(0)?,
                    route: r.get(1)?,
                    target: r.get(2)?,
                    created_ms: r.get(3)?,
                    item: r.get(4)?,
                })
            })
            .map_err(|e| HistoryError::sqlite(&self.path, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Marks notifications as accepted by their target.
    pub fn sent(&mut self, ids: &[i64], now_ms: i64) -> Result<(), HistoryError> {
        self.mark("UPDATE outbox SET sent = ?1 WHERE id = ?2", ids, now_ms)
    }

    /// Whether `target` accepted a notification within the days sent ones
    /// are kept.
    pub fn has_sent(&self, target: &str) -> Result<bool, HistoryError> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM outbox WHERE target = ?1 AND sent IS NOT NULL)", [target], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    /// Gives up on notifications their target refused for good.
    pub fn drop(&mut self, ids: &[i64], now_ms: i64) -> Result<(), HistoryError> {
        self.mark("UPDATE outbox SET dropped = ?1 WHERE id = ?2", ids, now_ms)
    }

    /// Runs `update` (time, id) for each of `ids`, in one transaction.
    fn mark(&mut self, update: &str, ids: &[i64], now_ms: i64) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        for id in ids {
            tx.execute(update, params![now_ms, id]).map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Gives up on notifications older than `give_up_ms` (returned, so they
    /// can be logged) and forgets sent ones older than `keep_ms`.
    pub fn expire(&mut self, now_ms: i64, give_up_ms: i64, keep_ms: i64) -> Result<Vec<Queued>, HistoryError> {
        let old: Vec<Queued> = self.unsent()?.into_iter().filter(|q| q.created_ms < now_ms - give_up_ms).collect();
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        for q in &old {
            tx.execute("UPDATE outbox SET dropped = ?1 WHERE id = ?2", params![now_ms, q.id]).map_err(e)?;
        }
        tx.execute(
            "DELETE FROM outbox WHERE (sent IS NOT NULL AND sent < ?1) OR (dropped IS NOT NULL AND dropped < ?1)",
            [now_ms - keep_ms],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Retention, Store};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cm-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn firing(rule: &str, ts_ms: u64, state: AlertState) -> AlertEvent {
        AlertEvent {
            ts_ms,
            rule: rule.into(),
            instance: "fs./srv.used_percent".into(),
            state,
            severity: Status::Critical,
            value: Some(93.0),
            reason: "used 93%".into(),
        }
    }

    #[test]
    fn events_and_notifications_survive_a_reopen_and_are_read_back() {
        let d = dir("reopen");
        let (store, _) = Store::open(&d, Retention::default(), 0).unwrap();
        let mut j = Journal::open(&d).unwrap();
        assert!(j.is_durable());
        let item = r#"{"kind":"alert"}"#.to_string();
        j.record(
            &[firing("full", 1_000, AlertState::Pending), firing("full", 2_000, AlertState::Firing)],
            &[("ops".into(), "smtp://a".into(), item.clone()), ("ops".into(), "ntfy://b".into(), item.clone())],
            2_000,
        )
        .unwrap();
        j.record(
            &[firing("other", 3_000, AlertState::Firing), firing("other", 4_000, AlertState::Resolved)],
            &[],
            4_000,
        )
        .unwrap();
        drop(j);
        drop(store);
        let (_store, _) = Store::open(&d, Retention::default(), 0).unwrap();
        let mut j = Journal::open(&d).unwrap();
        let active = j.active().unwrap();
        assert_eq!(active, [firing("full", 2_000, AlertState::Firing)], "the last event of each alert, if active");
        let unsent = j.unsent().unwrap();
        assert_eq!(unsent.iter().map(|q| q.target.as_str()).collect::<Vec<_>>(), ["smtp://a", "ntfy://b"]);
        j.sent(&[unsent[0].id], 5_000).unwrap();
        assert_eq!(j.unsent().unwrap().len(), 1);
        let reader = crate::Reader::open(&d).unwrap();
        let (events, more) = reader.alert_events(0, 10_000, 3).unwrap();
        assert!(more);
        assert_eq!(
            events.iter().map(|e| e.ts_ms).collect::<Vec<_>>(),
            [2_000, 3_000, 4_000],
            "the newest, oldest first"
        );
    }

    #[test]
    fn notifications_too_old_to_matter_are_given_up_and_sent_ones_forgotten() {
        let mut j = Journal::in_memory();
        let q = |t: &str| ("ops".to_string(), t.to_string(), "{}".to_string());
        j.record(&[], &[q("a")], 0).unwrap();
        j.record(&[], &[q("b")], 50_000).unwrap();
        let ids: Vec<i64> = j.unsent().unwrap().iter().map(|q| q.id).collect();
        j.sent(&ids[1..], 60_000).unwrap();
        let dropped = j.expire(100_000, 90_000, 1_000_000).unwrap();
        assert_eq!(dropped.iter().map(|q| q.target.as_str()).collect::<Vec<_>>(), ["a"]);
        assert!(j.unsent().unwrap().is_empty());
    }

    #[test]
    fn a_version_1_file_keeps_its_history_and_gains_the_journal() {
        let d = dir("v1");
        std::fs::create_dir_all(&d).unwrap();
        {
            let conn = Connection::open(d.join(FILE_NAME)).unwrap();
            let v1 = "
                CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, step REAL NOT NULL);
                CREATE TABLE recent (ts INTEGER NOT NULL, data BLOB NOT NULL);
                CREATE TABLE blocks (series INTEGER NOT NULL, tier INTEGER NOT NULL, start INTEGER NOT NULL,
                    data BLOB NOT NULL, PRIMARY KEY (series, tier, start)) WITHOUT ROWID;
                CREATE TABLE events (ts INTEGER NOT NULL, item TEXT NOT NULL, status TEXT NOT NULL, reason TEXT);
                CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO series (name, step) VALUES ('cpu.load1', 0.01);
                PRAGMA application_id = 1668114481; PRAGMA user_version = 1;";
            conn.execute_batch(v1).unwrap();
        }
        assert_eq!(crate::Reader::open(&d).unwrap().alert_events(0, 1, 10).unwrap(), (vec![], false));
        let (_store, opened) = Store::open(&d, Retention::default(), 0).unwrap();
        assert!(opened.moved_aside.is_none(), "upgraded in place, not moved aside");
        assert_eq!(crate::Reader::open(&d).unwrap().series().unwrap(), ["cpu.load1"]);
        Journal::open(&d).unwrap().record(&[firing("x", 1, AlertState::Firing)], &[], 1).unwrap();
    }
}
