//! The EC2 calls anamo makes: RunInstances from a launch template (`anamo launch`) and
//! DescribeInstances pages (`anamo sync --instances`), each instance read into a
//! `model::Instance`. Nothing else touches the EC2 SDK.

use std::collections::BTreeMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    Filter, HttpTokensState, InstanceInterruptionBehavior, InstanceMarketOptionsRequest,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest, InstanceMetadataTagsState,
    InstanceType, LaunchTemplateSpecification, MarketType, ResourceType, ShutdownBehavior,
    SpotInstanceType, SpotMarketOptions, Tag, TagSpecification,
};
use tokio::runtime::Runtime;

use crate::aws::{self, AwsOptions};
use crate::error::Result;
use crate::model::{Instance, SpotPrice};

/// The tags anamo puts on what it launches; `sync --instances` lists by them.
pub const STEP_TAG: &str = "anamo:step";
pub const LAUNCH_TAG: &str = "anamo:launch-id";
/// The task store an instance works for ([`store_tag`]): two studies' tables in one account
/// and region never count or sync each other's instances.
pub const STORE_TAG: &str = "anamo:store";

/// The `anamo:store` tag value of a store's identity: the identity itself for DynamoDB
/// (`dynamodb://TABLE in REGION`: characters EC2 tags take), else a short hash of it (a
/// SQLite path may hold characters tags do not take).
pub fn store_tag(identity: &str) -> String {
    if identity.starts_with("dynamodb://") && identity.len() <= 256 {
        return identity.to_string();
    }
    // FNV-1a, 64 bits: stable across Rust versions and machines.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in identity.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("sqlite:{h:016x}")
}

pub struct Ec2 {
    rt: Runtime,
    client: Client,
    region: Option<String>,
}

/// One RunInstances call.
#[derive(Debug, Clone)]
pub struct RunRequest<'a> {
    pub template: &'a str,
    pub count: u32,
    /// Fewest instances worth starting: below it EC2 starts none.
    pub min_count: u32,
    /// Plain text; base64-encoded here, as the API wants.
    pub user_data: &'a str,
    pub tags: &'a [(String, String)],
    pub spot: bool,
    pub instance_type: Option<&'a str>,
    pub dry_run: bool,
}

#[derive(Debug)]
pub enum RunOutcome {
    Started(Vec<Instance>),
    /// EC2 checked the request and permissions and would have run it.
    DryRunPassed,
}

impl Ec2 {
    pub fn connect(opts: &AwsOptions) -> Result<Self> {
        let rt = aws::runtime()?;
        let config = rt.block_on(aws::config(opts));
        let region = config.region().map(|r| r.to_string());
        Ok(Self {
            client: Client::new(&config),
            rt,
            region,
        })
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Starts between `min_count` and `count` instances, or none and an error: with capacity
    /// short EC2 gives fewer, and the caller records what came. Instances terminate (not stop)
    /// when the worker powers them off.
    pub fn run_instances(&self, req: &RunRequest) -> Result<RunOutcome> {
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .set_tags(Some(
                req.tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let mut call = self
            .client
            .run_instances()
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(req.template)
                    .build(),
            )
            .min_count(req.min_count.clamp(1, req.count) as i32)
            .max_count(req.count as i32)
            .user_data(aws_smithy_types::base64::encode(req.user_data))
            .tag_specifications(tags)
            .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
            // The worker finds its step in the instance's own tags (`anamo:step`) through
            // instance metadata, IMDSv2 only.
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_endpoint(InstanceMetadataEndpointState::Enabled)
                    .http_tokens(HttpTokensState::Required)
                    .instance_metadata_tags(InstanceMetadataTagsState::Enabled)
                    .build(),
            )
            .dry_run(req.dry_run);
        if let Some(t) = req.instance_type {
            call = call.instance_type(InstanceType::from(t));
        }
        if req.spot {
            call = call.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .spot_instance_type(SpotInstanceType::OneTime)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                            .build(),
                    )
                    .build(),
            );
        }
        match self.rt.block_on(call.send()) {
            Ok(out) => Ok(RunOutcome::Started(
                out.instances()
                    .iter()
                    .map(|i| instance(i, self.region()))
                    .collect(),
            )),
            Err(e) if req.dry_run && e.code() == Some("DryRunOperation") => {
                Ok(RunOutcome::DryRunPassed)
            }
            Err(e) => Err(aws::sdk_error(
                "EC2",
                &format!("cannot launch from template '{}'", req.template),
                e,
            )),
        }
    }

    /// Whether a launch template of this name exists (in this region).
    pub fn template_exists(&self, name: &str) -> Result<bool> {
        let out = self.rt.block_on(
            self.client
                .describe_launch_templates()
                .launch_template_names(name)
                .send(),
        );
        match out {
            Ok(o) => Ok(!o.launch_templates().is_empty()),
            Err(e)
                if e.code().is_some_and(|c| {
                    c.starts_with("InvalidLaunchTemplateName") || c.contains("NotFound")
                }) =>
            {
                Ok(false)
            }
            Err(e) => Err(aws::sdk_error("EC2", "cannot look up launch templates", e)),
        }
    }

    /// The value of one tag of an instance (DescribeTags), `None` when it has no such tag.
    pub fn tag_of(&self, instance_id: &str, key: &str) -> Result<Option<String>> {
        let out = self.rt.block_on(
            self.client
                .describe_tags()
                .filters(
                    Filter::builder()
                        .name("resource-id")
                        .values(instance_id)
                        .build(),
                )
                .filters(Filter::builder().name("key").values(key).build())
                .send(),
        );
        let out = out.map_err(|e| {
            aws::sdk_error(
                "EC2",
                &format!("cannot read the tags of {instance_id} (ec2:DescribeTags)"),
                e,
            )
        })?;
        Ok(out
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_string))
    }

    /// The Linux Spot prices of `instance_type` in `zone` that were in effect between `from`
    /// and `to` (epoch ms; EC2 includes the one in effect at `from`), page by page.
    pub fn spot_prices(
        &self,
        instance_type: &str,
        zone: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<SpotPrice>> {
        let time = |ms: i64| aws_smithy_types::DateTime::from_millis(ms);
        let mut pages = self
            .client
            .describe_spot_price_history()
            .instance_types(InstanceType::from(instance_type))
            .availability_zone(zone)
            .product_descriptions("Linux/UNIX")
            .product_descriptions("Linux/UNIX (Amazon VPC)")
            .start_time(time(from))
            .end_time(time(to))
            .into_paginator()
            .send();
        let mut prices = vec![];
        while let Some(page) = self.rt.block_on(pages.next()) {
            let page = page.map_err(|e| {
                aws::sdk_error(
                    "EC2",
                    &format!(
                        "cannot read Spot prices of {instance_type} in {zone} \
                         (ec2:DescribeSpotPriceHistory)"
                    ),
                    e,
                )
            })?;
            for p in page.spot_price_history() {
                let (Some(at), Some(usd)) = (
                    p.timestamp().and_then(|t| t.to_millis().ok()),
                    p.spot_price().and_then(|v| v.parse::<f64>().ok()),
                ) else {
                    continue;
                };
                // The zone asked for: emulators may ignore the filter.
                if p.availability_zone().is_some_and(|z| z != zone) {
                    continue;
                }
                prices.push(SpotPrice {
                    instance_type: instance_type.to_string(),
                    zone: zone.to_string(),
                    at,
                    usd_per_hour: usd,
                });
            }
        }
        Ok(prices)
    }

    /// Instances of `step` working for the store tagged `store` (by the anamo:step and
    /// anamo:store tags) that are pending or running.
    pub fn active_for_step(&self, step: &str, store: &str) -> Result<u64> {
        let mut pages = self
            .client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{STEP_TAG}"))
                    .values(step)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name(format!("tag:{STORE_TAG}"))
                    .values(store)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .build(),
            )
            .max_results(500)
            .into_paginator()
            .send();
        let mut n = 0;
        while let Some(page) = self.rt.block_on(pages.next()) {
            let page = page.map_err(|e| aws::sdk_error("EC2", "cannot list instances", e))?;
            n += page
                .reservations()
                .iter()
                .map(|r| r.instances().len() as u64)
                .sum::<u64>();
        }
        Ok(n)
    }

    /// Lists instances page by page: those tagged by anamo, or all with `all`.
    pub fn for_each_page(
        &self,
        all: bool,
        mut on_page: impl FnMut(Vec<Instance>) -> Result<()>,
    ) -> Result<()> {
        let filter = (!all).then(|| {
            Filter::builder()
                .name("tag-key")
                .values(STEP_TAG)
                .values(LAUNCH_TAG)
                .build()
        });
        let mut pages = self
            .client
            .describe_instances()
            .set_filters(filter.map(|f| vec![f]))
            .max_results(500)
            .into_paginator()
            .send();
        while let Some(page) = self.rt.block_on(pages.next()) {
            let page = page.map_err(|e| aws::sdk_error("EC2", "cannot list instances", e))?;
            let instances = page
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(|i| instance(i, self.region()))
                .collect();
            on_page(instances)?;
        }
        Ok(())
    }
}

fn instance(i: &aws_sdk_ec2::types::Instance, region: Option<&str>) -> Instance {
    let tags: BTreeMap<String, String> = i
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect();
    let state = i
        .state()
        .and_then(|s| s.name())
        .map_or("unknown", |n| n.as_str())
        .to_string();
    let transition = i.state_transition_reason().filter(|r| !r.is_empty());
    let state_reason = i
        .state_reason()
        .and_then(|r| r.message())
        .or(transition)
        .map(str::to_string);
    let terminated_at = (state == "terminated")
        .then(|| transition.and_then(transition_time))
        .flatten();
    Instance {
        instance_id: i.instance_id().unwrap_or_default().to_string(),
        step: tags.get(STEP_TAG).cloned(),
        launch_id: tags.get(LAUNCH_TAG).cloned(),
        state,
        state_reason,
        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
        lifecycle: i
            .instance_lifecycle()
            .map_or("on-demand", |l| l.as_str())
            .to_string(),
        launch_time: i.launch_time().and_then(|t| t.to_millis().ok()),
        terminated_at,
        tags,
        region: region.map(str::to_string),
        zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_string),
    }
}

/// The time in a transition reason such as "User initiated (2026-11-25 20:01:02 GMT)"
/// (emulators write UTC).
fn transition_time(reason: &str) -> Option<i64> {
    let inside = reason.rsplit_once('(')?.1;
    let inside = inside
        .strip_suffix(" GMT)")
        .or_else(|| inside.strip_suffix(" UTC)"))?;
    let t = humantime::parse_rfc3339_weak(inside).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn termination_time_is_read_from_the_transition_reason() {
        assert_eq!(
            transition_time("User initiated (2026-11-25 20:01:02 GMT)"),
            Some(1_795_636_862_000)
        );
        assert_eq!(
            transition_time("User initiated (2026-11-25 20:01:02 UTC)"),
            Some(1_795_636_862_000)
        );
        assert_eq!(transition_time("User initiated"), None);
        assert_eq!(transition_time("(not a time GMT)"), None);
    }
}
