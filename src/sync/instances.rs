//! EC2 -> catalog: DescribeInstances pages, each one transaction; state changes become
//! `instance_events`; instances EC2 no longer lists after a complete listing are marked
//! terminated (EC2 forgets terminated instances after about an hour).

use indicatif::ProgressBar;

use crate::aws::ec2::Ec2;
use crate::catalog::{Catalog, RunCounts};
use crate::error::Result;

/// Copies the instances anamo launched (or, with `all`, every instance) into the catalog.
pub fn sync_instances(
    ec2: &Ec2,
    catalog: &mut Catalog,
    all: bool,
    progress: &ProgressBar,
) -> Result<RunCounts> {
    let region = ec2.region().unwrap_or("unknown").to_string();
    let run = catalog.start_run(&format!("instances:{region}"))?;
    let mut counts = RunCounts::default();
    let listed = ec2.for_each_page(all, |page| {
        let c = catalog.write_instances(&page)?;
        counts += c;
        progress.inc(c.seen);
        Ok(())
    });
    let result = listed.and_then(|()| catalog.mark_instances_gone(run.started_at, &region, !all));
    progress.finish_and_clear();
    let result = result.map(|removed| counts.removed = removed);
    catalog.settle_run(&run, counts, result)?;
    Ok(counts)
}

/// What a Spot price sync found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpotPriceCounts {
    /// Instance type and zone pairs asked about.
    pub pairs: u64,
    pub new: u64,
}

/// Reads the Spot price history over the lives of the catalog's Spot instances in the
/// client's region, one type and zone at a time, from the newest price already known.
pub fn sync_spot_prices(ec2: &Ec2, catalog: &mut Catalog) -> Result<SpotPriceCounts> {
    let region = ec2.region().unwrap_or("unknown").to_string();
    let mut counts = SpotPriceCounts::default();
    for w in catalog.spot_windows(&region)? {
        let prices = ec2.spot_prices(&w.instance_type, &w.zone, w.from, w.to)?;
        counts.new += catalog.write_spot_prices(&prices)?;
        counts.pairs += 1;
    }
    Ok(counts)
}
