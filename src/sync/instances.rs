//! EC2 -> catalog: DescribeInstances pages, each one transaction; state changes become
//! `instance_events`; instances EC2 no longer lists after a complete listing are marked
//! terminated (EC2 forgets terminated instances after about an hour).

use indicatif::ProgressBar;

use crate::aws::ec2::{Ec2, STORE_TAG, store_tag};
use crate::catalog::{Catalog, RunCounts};
use crate::error::Result;
use crate::model::Instance;

/// What an instance sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceCounts {
    pub run: RunCounts,
    /// Instances anamo launched for other stores (or from other catalogs), left out.
    pub others: u64,
    /// Of those, how many an earlier sync had taken, now forgotten.
    pub forgotten: u64,
}

/// Copies the instances anamo launched for this catalog's store (or, with `all`, every
/// instance of the region) into the catalog. An instance is this store's when its
/// `anamo:store` tag names the store, or, launched before that tag, when its launch id is one
/// this catalog recorded.
pub fn sync_instances(
    ec2: &Ec2,
    catalog: &mut Catalog,
    all: bool,
    progress: &ProgressBar,
) -> Result<InstanceCounts> {
    let region = ec2.region().unwrap_or("unknown").to_string();
    let identity = catalog.store_identity()?;
    // `launch` starts a DynamoDB store's workers in the table's region: its instances are
    // there, and a listing of another region is a slip of --region or AWS_REGION.
    if let Some((_, theirs)) = identity
        .as_deref()
        .and_then(crate::store::dynamo::table_and_region)
        && theirs != region
        && !all
    {
        return Err(crate::error::Error::Invalid(format!(
            "catalog '{}' holds the tasks of {}, whose instances run in {theirs}, not {region}; \
             check --region and AWS_REGION (--all-instances takes every instance of {region})",
            catalog.path().display(),
            identity.as_deref().unwrap_or_default()
        )));
    }
    let store = identity.map(|s| store_tag(&s));
    let launches = catalog.launch_ids()?;
    let mine = |i: &Instance| {
        all || match i.tags.get(STORE_TAG) {
            Some(tag) => store.as_deref() == Some(tag.as_str()),
            None => i.launch_id.as_ref().is_some_and(|l| launches.contains(l)),
        }
    };
    let run = catalog.start_run(&format!("instances:{region}"))?;
    let mut counts = InstanceCounts::default();
    let mut others = vec![];
    let listed = ec2.for_each_page(all, |page| {
        let (ours, theirs): (Vec<Instance>, Vec<Instance>) = page.into_iter().partition(mine);
        counts.others += theirs.len() as u64;
        others.extend(theirs.into_iter().map(|i| i.instance_id));
        let c = catalog.write_instances(&ours)?;
        counts.run += c;
        progress.inc(c.seen);
        Ok(())
    });
    let result = listed.and_then(|()| {
        counts.forgotten = catalog.forget_instances(&others)?;
        catalog.mark_instances_gone(run.started_at, &region, !all)
    });
    progress.finish_and_clear();
    let result = result.map(|removed| counts.run.removed = removed);
    catalog.settle_run(&run, counts.run, result)?;
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
