//! The history store: one SQLite file (WAL) in the state directory.
//!
//! Each interval's samples are appended to `recent` in one transaction, so
//! a killed process loses at most the interval it was writing. Every ten
//! minutes the samples of the past block are sealed: per series, one block
//! of raw samples and one of its per-minute rollups ([`crate::codec`]). At
//! the end of each UTC day the day's minutes become a block of hourly
//! rollups. Reads join the sealed blocks with what is not sealed yet, so a
//! range is whole up to the last interval.
//!
//! Expired blocks are deleted per series and tier, a few series per
//! transaction, so no statement holds the write lock for long. When the file
//! outgrows `max_bytes`, the finest tier is kept for less time until it fits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cm_proto::history::{Answer, HistoryEnd, HistoryRequest, Point, Resolution, MAX_EVENTS, MAX_POINTS_PER_SERIES};
use cm_proto::series::{self, Sample};
use cm_proto::AlertEvent;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use thiserror::Error;

use crate::codec::{self, Roll, TIME_UNIT_MS};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "history.sqlite";
/// `PRAGMA application_id`: "cmh1", so a foreign SQLite file is told apart.
const APPLICATION_ID: i32 = 0x636d_6831;
/// 2 added the alert events and the notification outbox (see [`crate::journal`]).
const SCHEMA_VERSION: i32 = 2;

/// Raw blocks each span this long.
pub const BLOCK_MS: i64 = 600_000;
/// The least time raw samples are kept: a day's minutes and hours are made
/// from its raw samples when the day ends.
pub const MIN_RAW_MS: i64 = 25 * 3_600_000;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Series whose expired blocks are deleted in one transaction.
const DELETE_BATCH: usize = 32;
/// Points per series a request with no `max_points` gets at most, with `auto`.
pub const DEFAULT_MAX_POINTS: u32 = 2000;

const TIER_RAW: i64 = 0;
const TIER_MINUTE: i64 = 1;
const TIER_HOUR: i64 = 2;

/// How long each tier is kept, and how large the file may grow.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    pub raw_ms: i64,
    pub minutes_ms: i64,
    pub hours_ms: i64,
    /// The file's size (its pages in use) at most; 0 for no cap.
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { raw_ms: 48 * HOUR_MS, minutes_ms: 30 * DAY_MS, hours_ms: 730 * DAY_MS, max_bytes: 256 << 20 }
    }
}

/// SQLite's page cache per connection, in KiB: enough for the pages one
/// interval touches and the index of the blocks; reads stream through it.
pub const CACHE_KIB: i64 = 512;

/// Why history could not be kept or read.
#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("cannot use the state directory {}: {why}", path.display())]
    Dir { path: PathBuf, why: String },
    #[error("the disk holding {} is full; history is paused until there is room", path.display())]
    DiskFull { path: PathBuf },
    #[error("{} is read-only: {why}", path.display())]
    ReadOnly { path: PathBuf, why: String },
    #[error("{} is kept by another process (pid {holder}); this one keeps no history", path.display())]
    Busy { path: PathBuf, holder: String },
    #[error("no history at {}: {why}", path.display())]
    Missing { path: PathBuf, why: String },
    #[error("history database {}: {why}", path.display())]
    Sqlite { path: PathBuf, why: String },
}

impl HistoryError {
    pub(crate) fn sqlite(path: &Path, e: rusqlite::Error) -> HistoryError {
        let path = path.to_owned();
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => HistoryError::DiskFull { path },
            Some(ErrorCode::ReadOnly) => HistoryError::ReadOnly { path, why: e.to_string() },
            _ => HistoryError::Sqlite { path, why: e.to_string() },
        }
    }
}

/// What opening the store did that a person should hear of.
#[derive(Debug, Default)]
pub struct Opened {
    /// The file that was moved aside, and why.
    pub moved_aside: Option<(PathBuf, String)>,
}

/// The writing side: one per state directory, held by an exclusive lock on
/// `history.lock` so that a second writer (a second local dashboard) is told
/// instead of doubling every sample.
pub struct Store {
    conn: Connection,
    _lock: std::fs::File,
    path: PathBuf,
    retention: Retention,
    /// Each tier's retention, shorter than configured once `max_bytes` made it so.
    kept_ms: [i64; 3],
    ids: HashMap<String, (i64, f64)>,
    /// Blocks before this start are sealed.
    sealed_until: i64,
    /// Days before this start have their hour blocks.
    hours_until: i64,
    /// The end of the block whose expired data was last deleted.
    expired_until: i64,
}

/// Creates `dir` (owner-only) if needed and checks that a file can be made in it.
fn prepare_dir(dir: &Path) -> Result<(), HistoryError> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |e: std::io::Error| HistoryError::Dir { path: dir.to_owned(), why: e.to_string() };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
    let probe = dir.join(".cm-history-probe");
    match std::fs::File::create(&probe) {
        Ok(_) => std::fs::remove_file(&probe).map_err(err),
        Err(e) if e.raw_os_error() == Some(30) => {
            Err(HistoryError::ReadOnly { path: dir.to_owned(), why: "read-only file system".into() })
        }
        Err(e) => Err(err(e)),
    }
}

/// Takes the writer's lock of `dir`, or says who holds it.
fn lock(dir: &Path) -> Result<std::fs::File, HistoryError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("history.lock");
    let err = |e: std::io::Error| HistoryError::Dir { path: dir.to_owned(), why: e.to_string() };
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(err)?;
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(HistoryError::Busy { path: dir.to_owned(), holder: holder.trim().to_owned() });
    }
    file.set_len(0).map_err(err)?;
    file.rewind().map_err(err)?;
    write!(file, "{}", std::process::id()).map_err(err)?;
    Ok(file)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(2))?;
    conn.execute_batch(&format!("PRAGMA cache_size = -{CACHE_KIB}; PRAGMA temp_store = MEMORY;"))
}

/// Why an existing file is not a store of ours; `Ok(false)` when it is empty.
fn check_existing(conn: &Connection) -> Result<bool, String> {
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    let tables: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if app == 0 && tables == 0 {
        return Ok(false);
    }
    if app != APPLICATION_ID {
        return Err(format!("not a cm-agent history database (application id {app:#x})"));
    }
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if !(1..=SCHEMA_VERSION).contains(&version) {
        return Err(format!("schema version {version}, this agent reads 1 to {SCHEMA_VERSION}"));
    }
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if check != "ok" {
        return Err(format!("damaged: {check}"));
    }
    Ok(true)
}

const SCHEMA: &str = "
    PRAGMA auto_vacuum = INCREMENTAL;
    PRAGMA journal_mode = WAL;
    CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, step REAL NOT NULL);
    CREATE TABLE recent (ts INTEGER NOT NULL, data BLOB NOT NULL);
    CREATE TABLE blocks (
        series INTEGER NOT NULL, tier INTEGER NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (series, tier, start)
    ) WITHOUT ROWID;
    CREATE TABLE events (ts INTEGER NOT NULL, item TEXT NOT NULL, status TEXT NOT NULL, reason TEXT);
    CREATE INDEX events_ts ON events (ts);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// What version 2 added; applied to a version 1 file as it is opened for writing.
pub(crate) const SCHEMA_2: &str = "
    CREATE TABLE IF NOT EXISTS alert_events (
        ts INTEGER NOT NULL, rule TEXT NOT NULL, instance TEXT NOT NULL, state TEXT NOT NULL,
        severity TEXT NOT NULL, value REAL, reason TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS alert_events_ts ON alert_events (ts);
    CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY, route TEXT NOT NULL, target TEXT NOT NULL, created INTEGER NOT NULL,
        item TEXT NOT NULL, sent INTEGER, dropped INTEGER
    );
    CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (target, id) WHERE sent IS NULL AND dropped IS NULL;
    CREATE TABLE IF NOT EXISTS backup_clocks (
        job TEXT PRIMARY KEY, since INTEGER NOT NULL, success INTEGER
    ) WITHOUT ROWID;
";

impl Store {
    /// Opens (or starts) the store in `dir`. A file that is not a store of
    /// ours, or is damaged, is renamed `history.sqlite.corrupt-<unix time>`
    /// (never deleted) and a new one started; [`Opened`] says so.
    pub fn open(dir: &Path, retention: Retention, now_ms: i64) -> Result<(Store, Opened), HistoryError> {
        prepare_dir(dir)?;
        let lock = lock(dir)?;
        let path = dir.join(FILE_NAME);
        let mut opened = Opened::default();
        let conn = match Self::connect(&path) {
            Ok(conn) => conn,
            Err(why) => {
                let aside = dir.join(format!("{FILE_NAME}.corrupt-{}", now_ms / 1000));
                for suffix in ["", "-wal", "-shm"] {
                    let from = PathBuf::from(format!("{}{suffix}", path.display()));
                    if from.exists() {
                        let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                        std::fs::rename(&from, &to)
                            .map_err(|e| HistoryError::Dir { path: dir.to_owned(), why: e.to_string() })?;
                    }
                }
                opened.moved_aside = Some((aside, why));
                Self::connect(&path).map_err(|why| HistoryError::Sqlite { path: path.clone(), why })?
            }
        };
        let meta = |key: &str| -> Option<i64> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().ok().flatten()
        };
        let sealed_until = meta("sealed_until").unwrap_or(0);
        let hours_until = meta("hours_until").unwrap_or(0);
        let mut store = Store {
            conn,
            _lock: lock,
            path,
            kept_ms: [retention.raw_ms, retention.minutes_ms, retention.hours_ms],
            retention,
            ids: HashMap::new(),
            sealed_until,
            hours_until,
            expired_until: 0,
        };
        store.load_ids()?;
        store.write_retention()?;
        Ok((store, opened))
    }

    /// A connection to a file that is ours (made so when it is new), or why not.
    fn connect(path: &Path) -> Result<Connection, String> {
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        configure(&conn).map_err(|e| e.to_string())?;
        if !check_existing(&conn)? {
            conn.execute_batch(SCHEMA).map_err(|e| e.to_string())?;
            conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID};")).map_err(|e| e.to_string())?;
        }
        // A version 1 file keeps its history and gains the new tables.
        conn.execute_batch(&format!("BEGIN; {SCHEMA_2} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
            .map_err(|e| e.to_string())?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 4194304;",
        )
        .map_err(|e| e.to_string())?;
        Ok(conn)
    }

    fn err(&self, e: rusqlite::Error) -> HistoryError {
        HistoryError::sqlite(&self.path, e)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load_ids(&mut self) -> Result<(), HistoryError> {
        let mut stmt = self.conn.prepare("SELECT id, name, step FROM series").map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(1)?, (r.get::<_, i64>(0)?, r.get::<_, f64>(2)?))))
            .map_err(|e| HistoryError::sqlite(&self.path, e))?;
        let ids: Result<HashMap<_, _>, _> = rows.collect();
        self.ids = ids.map_err(|e| HistoryError::sqlite(&self.path, e))?;
        Ok(())
    }

    /// Retention goes into the file, so that readers (export, the wire) pick tiers by it.
    fn write_retention(&self) -> Result<(), HistoryError> {
        let [raw, minutes, hours] = self.kept_ms;
        for (key, value) in [("retention_raw", raw), ("retention_minutes", minutes), ("retention_hours", hours)] {
            self.conn
                .execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Stores one interval's samples, taken at `ts_ms`, in one transaction;
    /// seals, rolls up and expires what became due.
    pub fn record(&mut self, ts_ms: i64, samples: &[Sample]) -> Result<(), HistoryError> {
        let ts = ts_ms.div_euclid(TIME_UNIT_MS);
        let tx = self.conn.transaction().map_err(|e| HistoryError::sqlite(&self.path, e))?;
        {
            let mut insert_series = tx
                .prepare_cached("INSERT INTO series (name, step) VALUES (?1, ?2)")
                .map_err(|e| HistoryError::sqlite(&self.path, e))?;
            let mut interval = Vec::with_capacity(samples.len());
            for s in samples {
                let (id, step) = match self.ids.get(&s.name) {
                    Some(&known) => known,
                    None => {
                        let step = series::unit_of(&s.name).step();
                        insert_series
                            .execute(params![s.name, step])
                            .map_err(|e| HistoryError::sqlite(&self.path, e))?;
                        let known = (tx.last_insert_rowid(), step);
                        self.ids.insert(s.name.clone(), known);
                        known
                    }
                };
                interval.push((id, quantise(s.value, step)));
            }
            interval.sort_unstable();
            interval.dedup_by_key(|s| s.0);
            tx.prepare_cached("INSERT INTO recent (ts, data) VALUES (?1, ?2)")
                .and_then(|mut insert| insert.execute(params![ts, codec::encode_interval(&interval)]))
                .map_err(|e| HistoryError::sqlite(&self.path, e))?;
        }
        tx.commit().map_err(|e| HistoryError::sqlite(&self.path, e))?;
        if self.sealed_until == 0 {
            self.sealed_until = block_start(ts_ms);
            self.hours_until = day_start(ts_ms);
            self.save_marks()?;
        }
        self.maintain(ts_ms)
    }

    fn save_marks(&self) -> Result<(), HistoryError> {
        for (key, value) in [("sealed_until", self.sealed_until), ("hours_until", self.hours_until)] {
            self.conn
                .execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Seals past blocks, makes hour blocks of past days, deletes what expired.
    pub fn maintain(&mut self, now_ms: i64) -> Result<(), HistoryError> {
        let current = block_start(now_ms);
        if current > self.sealed_until {
            self.seal_before(current)?;
            self.sealed_until = current;
            self.save_marks()?;
        }
        let today = day_start(now_ms);
        while self.hours_until < today {
            self.roll_day(self.hours_until)?;
            self.hours_until += DAY_MS;
            self.save_marks()?;
        }
        if current > self.expired_until {
            self.expire(now_ms)?;
            self.expired_until = current;
        }
        Ok(())
    }

    /// Turns every unsealed sample before `until` into raw and minute blocks.
    fn seal_before(&mut self, until: i64) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let mut rows: Vec<(i64, i64, i64)> = Vec::new();
        {
            let mut stmt = tx.prepare("SELECT ts, data FROM recent WHERE ts < ?1").map_err(e)?;
            let mut found = stmt.query([until / TIME_UNIT_MS]).map_err(e)?;
            while let Some(row) = found.next().map_err(e)? {
                let ts: i64 = row.get(0).map_err(e)?;
                let data: Vec<u8> = row.get(1).map_err(e)?;
                // A damaged interval is left out rather than stopping every later seal.
                for (id, q) in codec::decode_interval(&data).unwrap_or_default() {
                    rows.push((id, ts, q));
                }
            }
        }
        rows.sort_unstable();
        rows.dedup_by_key(|r| (r.0, r.1));
        let mut i = 0;
        while i < rows.len() {
            let (id, ts, _) = rows[i];
            let start = block_start(ts * TIME_UNIT_MS);
            let mut j = i;
            while j < rows.len() && rows[j].0 == id && block_start(rows[j].1 * TIME_UNIT_MS) == start {
                j += 1;
            }
            let mut samples: Vec<(i64, i64)> = rows[i..j].iter().map(|&(_, t, q)| (t, q)).collect();
            // A block sealed before (the clock went back): merge with it.
            if let Some(old) = load_block(&tx, id, TIER_RAW, start).map_err(e)? {
                if let Ok(old) = codec::decode_samples(start / TIME_UNIT_MS, &old) {
                    samples.extend(old);
                    samples.sort_unstable();
                    samples.dedup_by_key(|s| s.0);
                }
            }
            save_block(&tx, id, TIER_RAW, start, &codec::encode_samples(start / TIME_UNIT_MS, &samples)).map_err(e)?;
            i = j;
        }
        tx.execute("DELETE FROM recent WHERE ts < ?1", [until / TIME_UNIT_MS]).map_err(e)?;
        tx.commit().map_err(e)
    }

    /// The minute and hour blocks of the day starting at `day`, from its raw
    /// samples (kept for longer than a day, so they are all still there).
    fn roll_day(&mut self, day: i64) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, e);
        let ids: Vec<i64> = self.ids.values().map(|&(id, _)| id).collect();
        // A batch of series per transaction, as for deletes.
        for batch in ids.chunks(DELETE_BATCH) {
            let tx = self.conn.transaction().map_err(e)?;
            for &id in batch {
                let samples = raw_samples(&tx, id, day, day + DAY_MS).map_err(e)?;
                if samples.is_empty() {
                    continue;
                }
                let minutes = minute_rolls(day, &samples);
                let at: Vec<(i64, Roll)> = minutes.iter().map(|r| (day + r.bucket * MINUTE_MS, *r)).collect();
                save_block(&tx, id, TIER_MINUTE, day, &codec::encode_rollups(&minutes)).map_err(e)?;
                save_block(&tx, id, TIER_HOUR, day, &codec::encode_rollups(&group(&at, day, HOUR_MS))).map_err(e)?;
            }
            tx.commit().map_err(e)?;
        }
        Ok(())
    }

    /// Deletes blocks past each tier's retention, a batch of series per
    /// transaction. While the file is over `max_bytes`, the raw tier is kept
    /// for half as long (down to one block), then the minutes (down to a
    /// day), then the hours (down to a week).
    fn expire(&mut self, now_ms: i64) -> Result<(), HistoryError> {
        self.delete_before(now_ms)?;
        let max = self.retention.max_bytes;
        let floors = [MIN_RAW_MS, DAY_MS, 7 * DAY_MS];
        while max > 0 && self.used_bytes()? > max {
            let Some(tier) = (0..3).find(|&t| self.kept_ms[t] > floors[t]) else { break };
            self.kept_ms[tier] = (self.kept_ms[tier] / 2).max(floors[tier]);
            self.write_retention()?;
            self.delete_before(now_ms)?;
        }
        self.conn.execute_batch("PRAGMA incremental_vacuum(2000)").map_err(|e| self.err(e))?;
        Ok(())
    }

    fn delete_before(&mut self, now_ms: i64) -> Result<(), HistoryError> {
        let ids: Vec<i64> = self.ids.values().map(|&(id, _)| id).collect();
        let cutoffs = [
            (TIER_RAW, block_start(now_ms - self.kept_ms[0])),
            (TIER_MINUTE, day_start(now_ms - self.kept_ms[1])),
            (TIER_HOUR, day_start(now_ms - self.kept_ms[2])),
        ];
        for batch in ids.chunks(DELETE_BATCH) {
            let path = self.path.clone();
            let e = |e| HistoryError::sqlite(&path, e);
            let tx = self.conn.transaction().map_err(e)?;
            for &id in batch {
                for (tier, cutoff) in cutoffs {
                    tx.execute(
                        "DELETE FROM blocks WHERE series = ?1 AND tier = ?2 AND start < ?3",
                        params![id, tier, cutoff],
                    )
                    .map_err(e)?;
                }
            }
            tx.commit().map_err(e)?;
        }
        for table in ["events", "alert_events"] {
            self.conn
                .execute(&format!("DELETE FROM {table} WHERE ts < ?1"), [now_ms - self.retention.hours_ms])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Bytes of the file's pages in use.
    pub fn used_bytes(&self) -> Result<u64, HistoryError> {
        let q = |sql: &str| self.conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map_err(|e| self.err(e));
        let (pages, free, size) = (q("PRAGMA page_count")?, q("PRAGMA freelist_count")?, q("PRAGMA page_size")?);
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// How long each tier (raw, minutes, hours) is kept now: shorter than
    /// configured when the file outgrew `max_bytes`.
    pub fn kept_ms(&self) -> [i64; 3] {
        self.kept_ms
    }

    /// Stores a status change of `item` (`fs./var`, `service.nginx.service`).
    pub fn record_event(
        &mut self,
        ts_ms: i64,
        item: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "INSERT INTO events (ts, item, status, reason) VALUES (?1, ?2, ?3, ?4)",
                params![ts_ms, item, status, reason],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

fn quantise(value: f64, step: f64) -> i64 {
    (value / step).round() as i64
}

fn block_start(ms: i64) -> i64 {
    ms.div_euclid(BLOCK_MS) * BLOCK_MS
}

fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

fn load_block(conn: &Connection, id: i64, tier: i64, start: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row(
        "SELECT data FROM blocks WHERE series = ?1 AND tier = ?2 AND start = ?3",
        params![id, tier, start],
        |r| r.get(0),
    )
    .optional()
}

fn save_block(conn: &Connection, id: i64, tier: i64, start: i64, data: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO blocks (series, tier, start, data) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![id, tier, start, data])
        .map(drop)
}

/// The per-minute rollups of samples (times in ms, in order), buckets counted from `start`.
fn minute_rolls(start: i64, samples: &[(i64, i64)]) -> Vec<Roll> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        let bucket = (samples[i].0 - start).div_euclid(MINUTE_MS);
        let mut j = i;
        while j < samples.len() && (samples[j].0 - start).div_euclid(MINUTE_MS) == bucket {
            j += 1;
        }
        out.extend(Roll::of(bucket, samples[i..j].iter().map(|s| s.1)));
        i = j;
    }
    out
}

/// Rollups at absolute times, grouped into buckets of `bucket_ms` from `origin`.
fn group(rolls: &[(i64, Roll)], origin: i64, bucket_ms: i64) -> Vec<Roll> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rolls.len() {
        let bucket = (rolls[i].0 - origin).div_euclid(bucket_ms);
        let mut j = i;
        while j < rolls.len() && (rolls[j].0 - origin).div_euclid(bucket_ms) == bucket {
            j += 1;
        }
        let parts: Vec<Roll> = rolls[i..j].iter().map(|r| r.1).collect();
        out.extend(Roll::merge(bucket, &parts));
        i = j;
    }
    out
}

/// Raw samples of `id` in `[from, to)` from the sealed blocks, times in ms.
fn raw_samples(conn: &Connection, id: i64, from: i64, to: i64) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for (start, data) in blocks_in(conn, id, TIER_RAW, block_start(from), to)? {
        for (t, q) in codec::decode_samples(start / TIME_UNIT_MS, &data).unwrap_or_default() {
            let ts = t * TIME_UNIT_MS;
            if ts >= from && ts < to {
                out.push((ts, q));
            }
        }
    }
    Ok(out)
}

/// Rolled-up per-minute rollups of `id` in `[from, to)` (one block a day), at their absolute times.
fn read_minute_blocks(conn: &Connection, id: i64, from: i64, to: i64) -> rusqlite::Result<Vec<(i64, Roll)>> {
    let mut out = Vec::new();
    for (start, data) in blocks_in(conn, id, TIER_MINUTE, day_start(from), to)? {
        for r in codec::decode_rollups(&data).unwrap_or_default() {
            let ts = start + r.bucket * MINUTE_MS;
            if ts >= from && ts < to {
                out.push((ts, r));
            }
        }
    }
    Ok(out)
}

fn blocks_in(conn: &Connection, id: i64, tier: i64, from: i64, to: i64) -> rusqlite::Result<Vec<(i64, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT start, data FROM blocks WHERE series = ?1 AND tier = ?2 AND start >= ?3 AND start < ?4 ORDER BY start",
    )?;
    let rows = stmt.query_map(params![id, tier, from, to], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The reading side: any number, in any process, beside the one [`Store`].
pub struct Reader {
    conn: Connection,
    path: PathBuf,
}

/// The local mode's store directory: `$XDG_DATA_HOME/cm-dashboard`, else
/// `~/.local/share/cm-dashboard`.
pub fn dashboard_dir() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".local/share"))
    })?;
    Some(data.join("cm-dashboard"))
}

impl Reader {
    /// Opens the store in `dir` for reading only.
    pub fn open(dir: &Path) -> Result<Reader, HistoryError> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Err(HistoryError::Missing { path, why: "no such file: nothing was recorded there yet".into() });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| HistoryError::sqlite(&path, e))?;
        configure(&conn).map_err(|e| HistoryError::sqlite(&path, e))?;
        match check_existing(&conn) {
            Ok(true) => Ok(Reader { conn, path }),
            Ok(false) => Err(HistoryError::Missing { path, why: "the file is empty".into() }),
            Err(why) => Err(HistoryError::Sqlite { path, why }),
        }
    }

    fn err(&self, e: rusqlite::Error) -> HistoryError {
        HistoryError::sqlite(&self.path, e)
    }

    fn meta(&self, key: &str) -> Result<Option<i64>, HistoryError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// SQLite's `PRAGMA integrity_check`: `ok`, or what is damaged.
    pub fn integrity_check(&self) -> Result<String, HistoryError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// Every series name the store holds.
    pub fn series(&self) -> Result<Vec<String>, HistoryError> {
        let mut stmt = self.conn.prepare("SELECT name FROM series ORDER BY name").map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| HistoryError::sqlite(&self.path, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The tier `auto` picks for a range: the finest that covers it, within
    /// the point budget.
    fn pick(&self, req: &HistoryRequest, now_ms: i64) -> Result<Resolution, HistoryError> {
        if req.resolution != Resolution::Auto {
            return Ok(req.resolution);
        }
        let budget = i64::from(if req.max_points == 0 { DEFAULT_MAX_POINTS } else { req.max_points });
        let span = req.to_ms - req.from_ms;
        let raw_kept = self.meta("retention_raw")?.unwrap_or(0);
        let minutes_kept = self.meta("retention_minutes")?.unwrap_or(0);
        Ok(if span <= budget * 2_000 && req.from_ms >= now_ms - raw_kept {
            Resolution::Raw
        } else if span <= budget * MINUTE_MS && req.from_ms >= now_ms - minutes_kept {
            Resolution::Minute
        } else {
            Resolution::Hour
        })
    }

    /// Answers a range request.
    pub fn range(&self, req: &HistoryRequest, now_ms: i64) -> Result<Answer, HistoryError> {
        let resolution = self.pick(req, now_ms)?;
        let mut stmt =
            self.conn.prepare_cached("SELECT id, name, step FROM series ORDER BY name").map_err(|e| self.err(e))?;
        let all: Vec<(i64, String, f64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| HistoryError::sqlite(&self.path, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let chosen: Vec<&(i64, String, f64)> =
            all.iter().filter(|(_, name, _)| req.series.iter().any(|sel| series::selects(sel, name))).collect();
        let (from, to) = (req.from_ms, req.to_ms);
        // Unsealed samples, read once for every series asked for.
        let mut recent: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        {
            let wanted: std::collections::HashSet<i64> = chosen.iter().map(|c| c.0).collect();
            let mut stmt = self
                .conn
                .prepare_cached("SELECT ts, data FROM recent WHERE ts >= ?1 AND ts < ?2")
                .map_err(|e| self.err(e))?;
            let lo = block_start(from).min(day_start(from)) / TIME_UNIT_MS;
            let mut rows =
                stmt.query([lo, to.div_euclid(TIME_UNIT_MS) + 1]).map_err(|e| HistoryError::sqlite(&self.path, e))?;
            while let Some(row) = rows.next().map_err(|e| HistoryError::sqlite(&self.path, e))? {
                let ts: i64 = row.get(0).map_err(|e| HistoryError::sqlite(&self.path, e))?;
                let data: Vec<u8> = row.get(1).map_err(|e| HistoryError::sqlite(&self.path, e))?;
                for (id, q) in codec::decode_interval(&data).unwrap_or_default() {
                    if wanted.contains(&id) {
                        recent.entry(id).or_default().push((ts, q));
                    }
                }
            }
            for samples in recent.values_mut() {
                samples.sort_unstable();
                samples.dedup_by_key(|s| s.0);
            }
        }
        let hours_until = self.meta("hours_until")?.unwrap_or(0);
        let mut answer = Answer::default();
        let mut points = 0u64;
        for &&(id, ref name, step) in &chosen {
            let unsealed = recent.get(&id).map_or(&[][..], Vec::as_slice);
            let mut pts = match resolution {
                Resolution::Raw | Resolution::Auto => self.raw(id, from, to, unsealed, step)?,
                Resolution::Minute => self
                    .minutes(id, from, to, unsealed, hours_until)?
                    .into_iter()
                    .map(|(ts, r)| point(ts, r, step))
                    .collect(),
                Resolution::Hour => self
                    .hours(id, from, to, unsealed, hours_until)?
                    .into_iter()
                    .map(|(ts, r)| point(ts, r, step))
                    .collect(),
            };
            if pts.len() > MAX_POINTS_PER_SERIES {
                pts.truncate(MAX_POINTS_PER_SERIES);
                answer.end.truncated = true;
            }
            points += pts.len() as u64;
            answer.series.push((name.clone(), resolution, pts));
        }
        answer.end = HistoryEnd { series: answer.series.len() as u32, points, ..answer.end };
        if req.events {
            let (events, more) = self.alert_events(from, to, MAX_EVENTS)?;
            answer.end.events = events.len() as u64;
            answer.end.truncated |= more;
            answer.events = events;
        }
        Ok(answer)
    }

    fn raw(&self, id: i64, from: i64, to: i64, unsealed: &[(i64, i64)], step: f64) -> Result<Vec<Point>, HistoryError> {
        let mut out = Vec::new();
        let blocks = blocks_in(&self.conn, id, TIER_RAW, block_start(from), to).map_err(|e| self.err(e))?;
        let sealed = blocks
            .iter()
            .flat_map(|(start, data)| codec::decode_samples(start / TIME_UNIT_MS, data).unwrap_or_default());
        let mut last = i64::MIN;
        for (t, q) in sealed.chain(unsealed.iter().copied()) {
            let ts = t * TIME_UNIT_MS;
            if ts >= from && ts < to && ts > last {
                out.push(Point::raw(ts, q as f64 * step));
                last = ts;
            }
        }
        Ok(out)
    }

    /// Per-minute rollups: rolled-up days from their blocks, the days since
    /// from the raw samples (sealed and not).
    fn minutes(
        &self,
        id: i64,
        from: i64,
        to: i64,
        unsealed: &[(i64, i64)],
        rolled_until: i64,
    ) -> Result<Vec<(i64, Roll)>, HistoryError> {
        let from = from.div_euclid(MINUTE_MS) * MINUTE_MS;
        let mut out = read_minute_blocks(&self.conn, id, from, to.min(rolled_until)).map_err(|e| self.err(e))?;
        let rest = from.max(rolled_until);
        if rest < to {
            let mut samples = raw_samples(&self.conn, id, rest, to).map_err(|e| self.err(e))?;
            let sealed_end = samples.last().map_or(i64::MIN, |s| s.0);
            samples.extend(
                unsealed
                    .iter()
                    .map(|&(t, q)| (t * TIME_UNIT_MS, q))
                    .filter(|&(ts, _)| ts > sealed_end && ts >= rest && ts < to),
            );
            out.extend(minute_rolls(rest, &samples).into_iter().map(|r| (rest + r.bucket * MINUTE_MS, r)));
        }
        Ok(out)
    }

    fn hours(
        &self,
        id: i64,
        from: i64,
        to: i64,
        unsealed: &[(i64, i64)],
        hours_until: i64,
    ) -> Result<Vec<(i64, Roll)>, HistoryError> {
        let mut out = Vec::new();
        for (day, data) in
            blocks_in(&self.conn, id, TIER_HOUR, day_start(from), to.min(hours_until)).map_err(|e| self.err(e))?
        {
            for r in codec::decode_rollups(&data).unwrap_or_default() {
                let ts = day + r.bucket * HOUR_MS;
                if ts >= from.div_euclid(HOUR_MS) * HOUR_MS && ts < to {
                    out.push((ts, r));
                }
            }
        }
        // The days not rolled up yet, from their minutes.
        let rest_from = hours_until.max(from.div_euclid(HOUR_MS) * HOUR_MS);
        if rest_from < to {
            let minutes = self.minutes(id, rest_from, to, unsealed, hours_until)?;
            out.extend(group(&minutes, rest_from, HOUR_MS).into_iter().map(|r| (rest_from + r.bucket * HOUR_MS, r)));
        }
        Ok(out)
    }

    /// Alert transitions in `[from_ms, to_ms)`, oldest first; the newest
    /// `limit` when there are more (and `true`).
    pub fn alert_events(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<(Vec<AlertEvent>, bool), HistoryError> {
        let version: i32 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        if version < 2 {
            return Ok((Vec::new(), false));
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts, rule, instance, state, severity, value, reason FROM alert_events
                 WHERE ts >= ?1 AND ts < ?2 ORDER BY ts DESC, rowid DESC LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![from_ms, to_ms, limit as i64 + 1], crate::journal::event_row)
            .map_err(|e| HistoryError::sqlite(&self.path, e))?;
        let mut events: Vec<AlertEvent> = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        let more = events.len() > limit;
        events.truncate(limit);
        events.reverse();
        Ok((events, more))
    }

    /// Status changes in `[from_ms, to_ms)`, oldest first.
    pub fn events(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Event>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT ts, item, status, reason FROM events WHERE ts >= ?1 AND ts < ?2 ORDER BY ts")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([from_ms, to_ms], |r| {
                Ok(Event { ts_ms: r.get(0)?, item: r.get(1)?, status: r.get(2)?, reason: r.get(3)? })
            })
            .map_err(|e| HistoryError::sqlite(&self.path, e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

/// A status change of one item, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ts_ms: i64,
    /// `fs./var`, `service.nginx.service`, `drive.sda`.
    pub item: String,
    pub status: String,
    pub reason: Option<String>,
}

fn point(ts_ms: i64, r: Roll, step: f64) -> Point {
    Point { ts_ms, min: r.min as f64 * step, max: r.max as f64 * step, mean: r.mean as f64 * step, count: r.count }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded generator, so every run stores the same numbers.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cm-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn sample(name: &str, value: f64) -> Sample {
        Sample { name: name.into(), value }
    }

    fn req(series: &str, from_ms: i64, to_ms: i64, resolution: Resolution) -> HistoryRequest {
        HistoryRequest { series: vec![series.into()], from_ms, to_ms, resolution, max_points: 0, events: false }
    }

    const T0: i64 = 1_764_028_800_000; // 2025-11-25T00:00:00Z

    #[test]
    fn rollups_agree_with_the_raw_samples_sealed_or_not() {
        let dir = tempdir("agree");
        let (mut store, _) = Store::open(&dir, Retention::default(), T0).unwrap();
        let mut rng = Lcg(7);
        // 26 hours at 2 s: a day is rolled into hours, the rest is not.
        let end = T0 + 26 * HOUR_MS + 7 * MINUTE_MS;
        let mut t = T0 + 1_000;
        while t < end {
            let load = (rng.next() * 400.0).round() / 100.0;
            store.record(t, &[sample("cpu.load1", load), sample("memory.used_bytes", 1e9 + rng.next() * 1e8)]).unwrap();
            t += 2_000;
        }
        let reader = Reader::open(&dir).unwrap();
        let raw = reader.range(&req("cpu.load1", T0, end, Resolution::Raw), end).unwrap();
        let raw = &raw.series[0].2;
        assert_eq!(raw.len() as i64, (end - T0 - 1_000 + 1_999) / 2_000, "every sample is kept");
        for (res, bucket) in [(Resolution::Minute, MINUTE_MS), (Resolution::Hour, HOUR_MS)] {
            let rolled = reader.range(&req("cpu.load1", T0, end, res), end).unwrap();
            let rolled = &rolled.series[0].2;
            let mut expected = Vec::new();
            for chunk in raw.chunk_by(|a, b| a.ts_ms.div_euclid(bucket) == b.ts_ms.div_euclid(bucket)) {
                let values: Vec<f64> = chunk.iter().map(|p| p.mean).collect();
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let min = values.iter().cloned().fold(f64::MAX, f64::min);
                let max = values.iter().cloned().fold(f64::MIN, f64::max);
                expected.push((chunk[0].ts_ms.div_euclid(bucket) * bucket, min, max, mean, values.len() as u32));
            }
            assert_eq!(rolled.len(), expected.len(), "{res:?}");
            for (p, e) in rolled.iter().zip(&expected) {
                assert_eq!((p.ts_ms, p.min, p.max, p.count), (e.0, e.1, e.2, e.4), "{res:?}");
                assert!((p.mean - e.3).abs() <= 0.01, "{res:?} mean {} vs {}", p.mean, e.3);
            }
        }
        let hours = reader.range(&req("cpu.load1", T0, end, Resolution::Hour), end).unwrap();
        assert_eq!(hours.series[0].2.len(), 27, "24 rolled-up hours and 3 computed from minutes");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_year_at_five_minutes_keeps_each_tier_for_its_retention() {
        let dir = tempdir("year");
        let retention = Retention { max_bytes: 0, ..Retention::default() };
        let (mut store, _) = Store::open(&dir, retention.clone(), T0).unwrap();
        let step = 5 * MINUTE_MS;
        let end = T0 + 400 * DAY_MS;
        let mut t = T0;
        while t < end {
            // Grows by 1 % a day.
            let day = (t - T0) as f64 / DAY_MS as f64;
            store.record(t, &[sample("fs./.used_percent", day)]).unwrap();
            t += step;
        }
        let reader = Reader::open(&dir).unwrap();
        let first = |res| {
            let a = reader.range(&req("fs./.used_percent", T0, end, res), end).unwrap();
            a.series[0].2.first().map(|p| p.ts_ms).unwrap()
        };
        let raw_first = first(Resolution::Raw);
        assert!(raw_first >= end - retention.raw_ms - BLOCK_MS && raw_first <= end - retention.raw_ms + BLOCK_MS);
        let minute_first = first(Resolution::Minute);
        // Minutes are kept in blocks of a day.
        assert!(
            minute_first >= end - retention.minutes_ms - DAY_MS && minute_first <= end - retention.minutes_ms + DAY_MS
        );
        assert_eq!(first(Resolution::Hour), T0, "hours are kept for 2 years");
        let hours = reader.range(&req("fs./.used_percent", T0, end, Resolution::Hour), end).unwrap();
        let hours = &hours.series[0].2;
        assert_eq!(hours.len(), 400 * 24);
        assert!(hours.iter().all(|p| p.count == 12), "12 samples an hour, every hour");
        let h = &hours[24 * 100 + 5];
        assert!((h.mean - (100.0 + 5.5 / 24.0 - 2.5 / 1440.0)).abs() < 0.02, "hour mean {}", h.mean);
        // Auto picks the tier by span: an hour is raw, a day is minutes, a month hours.
        for (span, want) in [(HOUR_MS, Resolution::Raw), (DAY_MS, Resolution::Minute), (30 * DAY_MS, Resolution::Hour)]
        {
            let a = reader.range(&req("fs.*", end - span, end, Resolution::Auto), end).unwrap();
            assert_eq!(a.series[0].1, want, "span {span}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn samples_not_sealed_survive_a_reopen() {
        let dir = tempdir("reopen");
        let (mut store, _) = Store::open(&dir, Retention::default(), T0).unwrap();
        for i in 0..10 {
            store.record(T0 + i * 2_000, &[sample("cpu.load1", i as f64)]).unwrap();
        }
        drop(store);
        let (mut store, opened) = Store::open(&dir, Retention::default(), T0).unwrap();
        assert!(opened.moved_aside.is_none());
        store.record(T0 + BLOCK_MS + 1_000, &[sample("cpu.load1", 99.0)]).unwrap();
        let a = Reader::open(&dir)
            .unwrap()
            .range(&req("cpu.load1", T0, T0 + DAY_MS, Resolution::Raw), T0 + BLOCK_MS)
            .unwrap();
        let values: Vec<f64> = a.series[0].2.iter().map(|p| p.mean).collect();
        assert_eq!(values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 99.0]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_moved_aside_never_deleted() {
        for (name, contents) in [("garbage", None), ("foreign", Some("CREATE TABLE notes (text TEXT);"))] {
            let dir = tempdir(name);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(FILE_NAME);
            match contents {
                None => std::fs::write(&path, vec![0x5a; 8192]).unwrap(),
                Some(sql) => Connection::open(&path).unwrap().execute_batch(sql).unwrap(),
            }
            let (mut store, opened) = Store::open(&dir, Retention::default(), T0).unwrap();
            let (aside, why) = opened.moved_aside.expect("moved aside");
            assert!(aside.exists(), "{name}: the old file is kept at {}", aside.display());
            assert!(aside.file_name().unwrap().to_str().unwrap().starts_with("history.sqlite.corrupt-"));
            assert!(!why.is_empty());
            store.record(T0, &[sample("cpu.load1", 1.0)]).unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// 40 hours of 20 noisy series at 10 s, into a store with `max_bytes`.
    fn forty_hours(name: &str, max_bytes: u64) -> (PathBuf, Store, i64, Vec<String>) {
        let dir = tempdir(name);
        let (mut store, _) = Store::open(&dir, Retention { max_bytes, ..Retention::default() }, T0).unwrap();
        let mut rng = Lcg(3);
        let names: Vec<String> = (0..20).map(|i| format!("service.s{i}.memory_bytes")).collect();
        let mut t = T0;
        while t < T0 + 40 * HOUR_MS {
            let samples: Vec<Sample> = names.iter().map(|n| sample(n, rng.next() * 1e9)).collect();
            store.record(t, &samples).unwrap();
            t += 10_000;
        }
        // The cap is applied when a block is sealed: here, at 40 h.
        store.record(t, &[sample(&names[0], 1.0)]).unwrap();
        (dir, store, t, names)
    }

    #[test]
    fn the_size_cap_shortens_the_raw_tier_until_the_file_fits() {
        let (dir, uncapped, _, _) = forty_hours("uncapped", 0);
        let full = uncapped.used_bytes().unwrap();
        drop(uncapped);
        std::fs::remove_dir_all(&dir).unwrap();
        let cap = full * 3 / 4;
        let (dir, store, end, names) = forty_hours("cap", cap);
        assert!(store.used_bytes().unwrap() <= cap, "{} bytes, cap {cap}", store.used_bytes().unwrap());
        assert_eq!(store.kept_ms()[0], MIN_RAW_MS, "raw kept for the least time, no less");
        let reader = Reader::open(&dir).unwrap();
        let raw = reader.range(&req(&names[0], T0, end, Resolution::Raw), end).unwrap();
        let first_raw = raw.series[0].2[0].ts_ms;
        assert!(first_raw >= end - MIN_RAW_MS - BLOCK_MS, "raw from {} h before the end", (end - first_raw) / HOUR_MS);
        let minutes = reader.range(&req(&names[0], T0, end, Resolution::Minute), end).unwrap();
        assert_eq!(minutes.series[0].2.len(), 40 * 60, "minutes are all kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_writer_is_told_who_holds_the_store() {
        let dir = tempdir("busy");
        let (_first, _) = Store::open(&dir, Retention::default(), T0).unwrap();
        let err = Store::open(&dir, Retention::default(), T0).err().expect("one writer at a time");
        assert!(err.to_string().contains(&format!("another process (pid {})", std::process::id())), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_store_is_a_clear_error() {
        let dir = tempdir("missing");
        let err = Reader::open(&dir).err().expect("no store");
        assert!(err.to_string().contains("no such file: nothing was recorded there yet"), "{err}");
    }
}
