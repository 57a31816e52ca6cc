//! What instances cost: Spot prices from EC2's history and the user's on-demand price table.
//! The arithmetic is the `instance_costs` view's (migration 0009); this file only fills its
//! inputs and lists the table.

use rusqlite::params;

use super::{Catalog, CatalogRead};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::model::SpotPrice;

/// The span of Spot prices one instance type in one zone needs: from the first launch (or the
/// newest price already known, whichever is later) to the last moment seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotWindow {
    pub instance_type: String,
    pub zone: String,
    pub from: i64,
    pub to: i64,
}

/// An on-demand price of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub instance_type: String,
    pub usd_per_hour: f64,
    pub source: String,
    pub set_at: i64,
}

/// Checks a price as a user gives it: a positive number of dollars an hour.
pub fn check_price(instance_type: &str, usd_per_hour: f64) -> Result<()> {
    if instance_type.is_empty()
        || !instance_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(Error::Invalid(format!(
            "'{instance_type}' is not an instance type; write it as EC2 does, e.g. m5.xlarge"
        )));
    }
    if !usd_per_hour.is_finite() || usd_per_hour <= 0.0 {
        return Err(Error::Invalid(format!(
            "the price of {instance_type} must be a positive number of US dollars an hour, \
             not {usd_per_hour}"
        )));
    }
    Ok(())
}

impl Catalog {
    /// The Spot price windows the catalog's Spot instances in `region` need.
    pub fn spot_windows(&self, region: &str) -> Result<Vec<SpotWindow>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT i.instance_type, i.zone, min(i.launch_time),
                        max(coalesce(i.terminated_at, i.last_seen_at)),
                        (SELECT max(p.at) FROM spot_prices p
                         WHERE p.instance_type = i.instance_type AND p.zone = i.zone)
                 FROM instances i
                 WHERE i.lifecycle = 'spot' AND i.region = ?1 AND i.launch_time IS NOT NULL
                   AND i.instance_type IS NOT NULL AND i.zone IS NOT NULL
                 GROUP BY i.instance_type, i.zone
                 ORDER BY i.instance_type, i.zone",
            )?;
            let rows = stmt.query_map([region], |r| {
                let first: i64 = r.get(2)?;
                let known: Option<i64> = r.get(4)?;
                Ok(SpotWindow {
                    instance_type: r.get(0)?,
                    zone: r.get(1)?,
                    from: known.map_or(first, |k| k.max(first)),
                    to: r.get::<_, i64>(3)?.max(first),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Records Spot prices (a price seen again is kept once); returns how many were new.
    pub fn write_spot_prices(&mut self, prices: &[SpotPrice]) -> Result<u64> {
        self.write(|tx| {
            let mut new = 0;
            {
                let mut stmt = tx.prepare(
                    "INSERT OR IGNORE INTO spot_prices (instance_type, zone, at, usd_per_hour) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?;
                for p in prices {
                    new += stmt.execute(params![p.instance_type, p.zone, p.at, p.usd_per_hour])?
                        as u64;
                }
            }
            Ok(new)
        })
    }

    /// Removes a type from the price table; whether it was there.
    pub fn unset_price(&mut self, instance_type: &str) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM prices WHERE instance_type = ?1",
                [instance_type],
            )? > 0)
        })
    }

    /// The instance types of the catalog's instances.
    pub fn instance_types(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT instance_type FROM instances WHERE instance_type IS NOT NULL \
                 ORDER BY 1",
            )?;
            let types = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(types)
        })
    }

    /// Sets on-demand prices (one transaction; each checked first).
    pub fn set_prices(&mut self, prices: &[(String, f64)], source: &str) -> Result<()> {
        for (t, usd) in prices {
            check_price(t, *usd)?;
        }
        self.write(|tx| {
            let now = now_ms();
            for (t, usd) in prices {
                tx.execute(
                    "INSERT INTO prices (instance_type, usd_per_hour, source, set_at) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (instance_type) DO UPDATE SET usd_per_hour = excluded.usd_per_hour, \
                         source = excluded.source, set_at = excluded.set_at",
                    params![t, usd, source, now],
                )?;
            }
            Ok(())
        })
    }
}

impl CatalogRead {
    /// The on-demand price table, by type.
    pub fn prices(&self) -> Result<Vec<Price>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
            "SELECT instance_type, usd_per_hour, source, set_at FROM prices ORDER BY instance_type",
        )?;
            let rows = stmt.query_map([], |r| {
                Ok(Price {
                    instance_type: r.get(0)?,
                    usd_per_hour: r.get(1)?,
                    source: r.get(2)?,
                    set_at: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}
