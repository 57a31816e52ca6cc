//! EC2 in the catalog: `instances` with their state changes as `instance_events`, and
//! `launches`, the record of every cluster start (including refused and dry-run ones).

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Catalog, RunCounts};
use crate::clock::now_ms;
use crate::error::Result;
use crate::model::Instance;

/// What `anamo launch` asked EC2 for, written before the call so that no launch goes
/// unrecorded, whatever happens next.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRecord {
    pub launch_id: String,
    pub requested_at: i64,
    pub requested_by: String,
    pub step: String,
    pub template: String,
    /// --count as given.
    pub asked: u64,
    /// After capping by the work left: what was sent.
    pub requested: u64,
    pub spot: bool,
    pub dry_run: bool,
    pub instance_type: Option<String>,
    pub region: Option<String>,
    pub user_data: String,
}

impl Catalog {
    pub fn record_launch(&mut self, l: &LaunchRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO launches (launch_id, requested_at, requested_by, step, template, asked, \
                 requested, spot, dry_run, instance_type, region, user_data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    l.launch_id,
                    l.requested_at,
                    l.requested_by,
                    l.step,
                    l.template,
                    l.asked as i64,
                    l.requested as i64,
                    l.spot,
                    l.dry_run,
                    l.instance_type,
                    l.region,
                    l.user_data
                ],
            )?;
            Ok(())
        })
    }

    /// What came of a launch: the instances started (recorded as instances too) or the error.
    pub fn record_launch_outcome(
        &mut self,
        launch_id: &str,
        started: &[Instance],
        error: Option<&str>,
    ) -> Result<()> {
        self.write(|tx| {
            let ids: Vec<&str> = started.iter().map(|i| i.instance_id.as_str()).collect();
            tx.execute(
                "UPDATE launches SET started = ?2, instance_ids = ?3, error = ?4 WHERE launch_id = ?1",
                params![
                    launch_id,
                    started.len() as i64,
                    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()),
                    error
                ],
            )?;
            let now = now_ms();
            for instance in started {
                upsert(tx, instance, now)?;
            }
            Ok(())
        })
    }

    /// Writes one page of instances in one transaction; a changed state becomes an event.
    pub fn write_instances(&mut self, page: &[Instance]) -> Result<RunCounts> {
        self.write(|tx| {
            let now = now_ms();
            let mut counts = RunCounts::default();
            for instance in page {
                match upsert(tx, instance, now)? {
                    Change::New => counts.new += 1,
                    Change::State => counts.changed += 1,
                    Change::None => {}
                }
                counts.seen += 1;
            }
            Ok(counts)
        })
    }

    /// The launch ids this catalog recorded (`anamo launch` from here).
    pub fn launch_ids(&self) -> Result<std::collections::HashSet<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT launch_id FROM launches")?;
            let ids = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(ids)
        })
    }

    /// Forgets instances (and their state changes) that an earlier sync took but that work
    /// for another store. Returns how many it held.
    pub fn forget_instances(&mut self, ids: &[String]) -> Result<u64> {
        self.write(|tx| {
            let mut n = 0;
            for id in ids {
                tx.execute("DELETE FROM instance_events WHERE instance_id = ?1", [id])?;
                n += tx.execute("DELETE FROM instances WHERE instance_id = ?1", [id])? as u64;
            }
            Ok(n)
        })
    }

    /// After a complete listing of `region`: instances we last knew alive that EC2 no longer
    /// lists (it forgets terminated ones after about an hour) are marked terminated.
    /// `tagged_only`: judge only instances anamo launched (the listing was filtered by tag).
    pub fn mark_instances_gone(
        &mut self,
        listed_since: i64,
        region: &str,
        tagged_only: bool,
    ) -> Result<u64> {
        self.write(|tx| {
            let now = now_ms();
            let gone: Vec<(String, String)> = {
                let mut stmt = tx.prepare(
                    "SELECT instance_id, state FROM instances \
                     WHERE last_seen_at < ?1 AND region = ?2 AND state <> 'terminated' \
                       AND (?3 = 0 OR step IS NOT NULL OR launch_id IS NOT NULL)",
                )?;
                stmt.query_map(params![listed_since, region, tagged_only], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?
            };
            for (id, from) in &gone {
                tx.execute(
                    "UPDATE instances SET state = 'terminated', state_reason = ?2, \
                     terminated_at = coalesce(terminated_at, ?3) WHERE instance_id = ?1",
                    params![id, GONE, now],
                )?;
                event(tx, id, now, Some(from), "terminated", Some(GONE))?;
            }
            Ok(gone.len() as u64)
        })
    }
}

const GONE: &str = "no longer listed by EC2";

enum Change {
    New,
    State,
    None,
}

fn upsert(tx: &Transaction, i: &Instance, now: i64) -> Result<Change> {
    let before: Option<String> = tx
        .query_row(
            "SELECT state FROM instances WHERE instance_id = ?1",
            params![i.instance_id],
            |r| r.get(0),
        )
        .optional()?;
    let tags = serde_json::to_string(&i.tags).unwrap_or_else(|_| "{}".into());
    // Values EC2 stops reporting (an old launch time, a termination time) are kept.
    tx.execute(
        "INSERT INTO instances (instance_id, step, launch_id, state, state_reason, instance_type, \
             lifecycle, launch_time, terminated_at, tags, region, first_seen_at, last_seen_at, \
             zone) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13) \
         ON CONFLICT (instance_id) DO UPDATE SET \
             step = coalesce(excluded.step, step), \
             launch_id = coalesce(excluded.launch_id, launch_id), \
             state = excluded.state, state_reason = excluded.state_reason, \
             instance_type = coalesce(excluded.instance_type, instance_type), \
             lifecycle = excluded.lifecycle, \
             launch_time = coalesce(excluded.launch_time, launch_time), \
             terminated_at = coalesce(terminated_at, excluded.terminated_at), \
             tags = excluded.tags, region = coalesce(excluded.region, region), \
             zone = coalesce(excluded.zone, zone), \
             last_seen_at = excluded.last_seen_at",
        params![
            i.instance_id,
            i.step,
            i.launch_id,
            i.state,
            i.state_reason,
            i.instance_type,
            i.lifecycle,
            i.launch_time,
            i.terminated_at,
            tags,
            i.region,
            now,
            i.zone
        ],
    )?;
    if before.as_deref() == Some(i.state.as_str()) {
        return Ok(Change::None);
    }
    // A first sighting is an event too (from no state): an instance's history starts there.
    let reason = i.state_reason.as_deref();
    event(tx, &i.instance_id, now, before.as_deref(), &i.state, reason)?;
    Ok(if before.is_some() {
        Change::State
    } else {
        Change::New
    })
}

fn event(
    tx: &Transaction,
    instance_id: &str,
    at: i64,
    from: Option<&str>,
    to: &str,
    reason: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO instance_events (instance_id, at, from_state, to_state, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![instance_id, at, from, to, reason],
    )?;
    Ok(())
}
