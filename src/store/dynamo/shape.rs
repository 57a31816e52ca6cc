//! What a DynamoDB table is, judged from its description alone: anamo's shape, one that
//! `anamo store init` can bring to it in place, or one it must refuse (with the line that
//! says why and what to do). Every command that opens the table judges it here, so a table made
//! by hand or by an infrastructure tool with the right names but the wrong key types or index
//! projections is refused before a worker claims from an index that cannot show it anything.
//! Nothing here sends a request (table.rs does).

use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndexDescription, IndexStatus, ProjectionType, ScalarAttributeType,
    TableDescription,
};

use super::item::{
    CHANGE_INDEX, CHANGE_SHARD, CLAIM_SHARD, CLAIMABLE_AT, COLLECTION, INDEX, LEGACY_INDEX,
    PROJECTED, SAMPLE, SAMPLE_INDEX, SAMPLE_PROJECTED, TASK_ID, UPDATED_AT_KEY,
};

/// The table as anamo sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    Current {
        /// Read and write units when the table is provisioned, not on-demand.
        provisioned: Option<(i64, i64)>,
    },
    /// Right keys; `store init` can do the rest in place, in this order.
    Repairable(Vec<Repair>),
    /// An index is being built or removed: wait.
    Busy { index: String, status: String },
    /// Not usable: the line that says why and what to do.
    Refused(String),
}

/// One change `store init` makes in place.
#[derive(Debug, PartialEq, Eq)]
pub enum Repair {
    /// Add the sharded claim index and give every item its shard; drop the unsharded index
    /// of an older anamo when it is there.
    AddClaimIndex {
        drop_legacy: bool,
    },
    AddSampleIndex,
    /// Add the change index (incremental sync) and give every item its change shard. A table
    /// without it works; `sync` reads it whole.
    AddChangeIndex,
    /// An index of anamo's whose projection lacks attributes anamo reads from it: a
    /// projection cannot be changed, so the index is removed and made again.
    Rebuild {
        index: &'static str,
        /// How it projects now (`KEYS_ONLY`, `INCLUDE`).
        projects: String,
        lacks: Vec<&'static str>,
    },
}

impl Repair {
    /// What is wrong, as a clause after "table T".
    pub fn problem(&self) -> String {
        match self {
            Repair::AddClaimIndex { drop_legacy: true } => format!(
                "has the unsharded claim index '{LEGACY_INDEX}' of an older anamo, not '{INDEX}'"
            ),
            Repair::AddClaimIndex { drop_legacy: false } => {
                format!("has no claim index '{INDEX}'")
            }
            Repair::AddSampleIndex => {
                format!("has no '{SAMPLE_INDEX}' index (made before chained steps)")
            }
            Repair::AddChangeIndex => {
                format!("has no '{CHANGE_INDEX}' index (made before incremental sync)")
            }
            Repair::Rebuild {
                index,
                projects,
                lacks,
            } => format!(
                "has index '{index}' projecting {projects}, without {} that anamo reads \
                 from it",
                lacks.join(", ")
            ),
        }
    }
}

/// The shape of a described table.
pub fn judge(t: &TableDescription) -> Shape {
    let table = t.table_name().unwrap_or("?");
    let keys: Vec<String> = t
        .key_schema()
        .iter()
        .map(|k| format!("{} ({})", k.attribute_name(), k.key_type().as_str()))
        .collect();
    if keys != [format!("{COLLECTION} (HASH)"), format!("{TASK_ID} (RANGE)")] {
        return Shape::Refused(format!(
            "table {table} has key schema {}, not {COLLECTION} (HASH) + {TASK_ID} (RANGE); \
             point --store at an anamo table or create one with `anamo store init`",
            keys.join(" + ")
        ));
    }
    let type_of = |name: &str| {
        t.attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == name)
            .map(|d| d.attribute_type().clone())
    };
    let new_table = "anamo cannot use it: create a new table with `anamo store init --store \
                     dynamodb://NEW` (and point --store at it)";
    for (name, want) in [
        (COLLECTION, ScalarAttributeType::S),
        (TASK_ID, ScalarAttributeType::S),
        (CLAIM_SHARD, ScalarAttributeType::S),
        (CLAIMABLE_AT, ScalarAttributeType::N),
        (SAMPLE, ScalarAttributeType::S),
        (CHANGE_SHARD, ScalarAttributeType::S),
        (UPDATED_AT_KEY, ScalarAttributeType::N),
    ] {
        if let Some(have) = type_of(name)
            && have != want
        {
            return Shape::Refused(format!(
                "table {table} has attribute {name} of type {}, not {} ({}); {new_table}",
                have.as_str(),
                want.as_str(),
                if want == ScalarAttributeType::N {
                    "a number"
                } else {
                    "a string"
                }
            ));
        }
    }
    let indexes = t.global_secondary_indexes();
    if let Some(busy) = indexes
        .iter()
        .find(|i| i.index_status().is_some_and(|s| *s != IndexStatus::Active))
    {
        return Shape::Busy {
            index: busy.index_name().unwrap_or("?").to_string(),
            status: busy.index_status().map_or("?", |s| s.as_str()).to_string(),
        };
    }
    let find = |name: &str| indexes.iter().find(|i| i.index_name() == Some(name));
    let mut repairs = vec![];
    match find(INDEX) {
        Some(claim) => {
            if let Some(refused) = keyed_on(table, claim, &[CLAIM_SHARD, CLAIMABLE_AT]) {
                return Shape::Refused(refused);
            }
            repairs.extend(projection_lacks(INDEX, claim, PROJECTED));
        }
        None => {
            let legacy = find(LEGACY_INDEX)
                .is_some_and(|i| keyed_on(table, i, &[COLLECTION, CLAIMABLE_AT]).is_none());
            repairs.push(Repair::AddClaimIndex {
                drop_legacy: legacy,
            });
        }
    }
    match find(SAMPLE_INDEX) {
        Some(by_sample) => {
            if let Some(refused) = keyed_on(table, by_sample, &[SAMPLE]) {
                return Shape::Refused(refused);
            }
            repairs.extend(projection_lacks(SAMPLE_INDEX, by_sample, SAMPLE_PROJECTED));
        }
        None => repairs.push(Repair::AddSampleIndex),
    }
    match find(CHANGE_INDEX) {
        Some(by_change) => {
            if let Some(refused) = keyed_on(table, by_change, &[CHANGE_SHARD, UPDATED_AT_KEY]) {
                return Shape::Refused(refused);
            }
        }
        None => repairs.push(Repair::AddChangeIndex),
    }
    if !repairs.is_empty() {
        return Shape::Repairable(repairs);
    }
    Shape::Current {
        provisioned: provisioned(t),
    }
}

/// Read and write units when the table is provisioned, not on-demand.
pub fn provisioned(t: &TableDescription) -> Option<(i64, i64)> {
    (t.billing_mode_summary().and_then(|b| b.billing_mode()) != Some(&BillingMode::PayPerRequest))
        .then(|| t.provisioned_throughput())
        .flatten()
        .map(|p| {
            (
                p.read_capacity_units().unwrap_or(0),
                p.write_capacity_units().unwrap_or(0),
            )
        })
        .filter(|(r, w)| *r > 0 || *w > 0)
}

/// The refusal of an index of anamo's name keyed on other attributes than `keys`.
fn keyed_on(table: &str, index: &GlobalSecondaryIndexDescription, keys: &[&str]) -> Option<String> {
    let have: Vec<&str> = index
        .key_schema()
        .iter()
        .map(|k| k.attribute_name())
        .collect();
    (have != keys).then(|| {
        format!(
            "table {table} has index '{}' on ({}), not ({}) as anamo makes it; delete that \
             index and run `anamo store init --store dynamodb://{table}`, or create a new \
             table with `anamo store init --store dynamodb://NEW`",
            index.index_name().unwrap_or("?"),
            have.join(", "),
            keys.join(", ")
        )
    })
}

/// The rebuild an index needs when its projection lacks some of `needed`.
fn projection_lacks(
    name: &'static str,
    index: &GlobalSecondaryIndexDescription,
    needed: &[&'static str],
) -> Option<Repair> {
    let projection = index.projection();
    let kind = projection
        .and_then(|p| p.projection_type())
        .cloned()
        .unwrap_or(ProjectionType::KeysOnly);
    if kind == ProjectionType::All {
        return None;
    }
    let carried = projection.map_or(&[][..], |p| p.non_key_attributes());
    let lacks: Vec<&'static str> = needed
        .iter()
        .copied()
        .filter(|n| !carried.iter().any(|c| c == n))
        .collect();
    (!lacks.is_empty()).then(|| Repair::Rebuild {
        index: name,
        projects: kind.as_str().to_string(),
        lacks,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingModeSummary, KeySchemaElement, KeyType, Projection,
        ProvisionedThroughputDescription,
    };

    use super::*;

    fn key(name: &str, kind: KeyType) -> KeySchemaElement {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    }

    fn def(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .unwrap()
    }

    fn index(name: &str, keys: &[&str], projection: Projection) -> GlobalSecondaryIndexDescription {
        let mut b = GlobalSecondaryIndexDescription::builder()
            .index_name(name)
            .index_status(IndexStatus::Active)
            .projection(projection);
        for (i, k) in keys.iter().enumerate() {
            b = b.key_schema(key(
                k,
                if i == 0 {
                    KeyType::Hash
                } else {
                    KeyType::Range
                },
            ));
        }
        b.build()
    }

    fn include(attrs: &[&str]) -> Projection {
        Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(attrs.iter().map(|s| s.to_string()).collect()))
            .build()
    }

    fn keys_only() -> Projection {
        Projection::builder()
            .projection_type(ProjectionType::KeysOnly)
            .build()
    }

    /// A table as `store init` makes it, with `task_id` of type `id_type` and the two
    /// indexes given.
    fn table(
        id_type: ScalarAttributeType,
        indexes: Vec<GlobalSecondaryIndexDescription>,
    ) -> TableDescription {
        TableDescription::builder()
            .table_name("t")
            .key_schema(key(COLLECTION, KeyType::Hash))
            .key_schema(key(TASK_ID, KeyType::Range))
            .attribute_definitions(def(COLLECTION, ScalarAttributeType::S))
            .attribute_definitions(def(TASK_ID, id_type))
            .attribute_definitions(def(CLAIM_SHARD, ScalarAttributeType::S))
            .attribute_definitions(def(CLAIMABLE_AT, ScalarAttributeType::N))
            .attribute_definitions(def(SAMPLE, ScalarAttributeType::S))
            .billing_mode_summary(
                BillingModeSummary::builder()
                    .billing_mode(BillingMode::PayPerRequest)
                    .build(),
            )
            .set_global_secondary_indexes(Some(indexes))
            .build()
    }

    fn claim(p: Projection) -> GlobalSecondaryIndexDescription {
        index(INDEX, &[CLAIM_SHARD, CLAIMABLE_AT], p)
    }

    fn by_sample(p: Projection) -> GlobalSecondaryIndexDescription {
        index(SAMPLE_INDEX, &[SAMPLE], p)
    }

    fn by_change() -> GlobalSecondaryIndexDescription {
        index(CHANGE_INDEX, &[CHANGE_SHARD, UPDATED_AT_KEY], keys_only())
    }

    #[test]
    fn a_table_without_the_change_index_is_repairable_alone() {
        let t = table(
            ScalarAttributeType::S,
            vec![
                claim(include(PROJECTED)),
                by_sample(include(SAMPLE_PROJECTED)),
            ],
        );
        assert_eq!(judge(&t), Shape::Repairable(vec![Repair::AddChangeIndex]));
        let t = table(
            ScalarAttributeType::S,
            vec![
                claim(include(PROJECTED)),
                by_sample(include(SAMPLE_PROJECTED)),
                index(CHANGE_INDEX, &[SAMPLE, UPDATED_AT_KEY], keys_only()),
            ],
        );
        assert!(matches!(judge(&t), Shape::Refused(l) if l.contains("by_change")));
    }

    #[test]
    fn anamo_s_own_table_is_current() {
        let t = table(
            ScalarAttributeType::S,
            vec![
                claim(include(PROJECTED)),
                by_sample(include(SAMPLE_PROJECTED)),
                by_change(),
            ],
        );
        assert_eq!(judge(&t), Shape::Current { provisioned: None });
    }

    #[test]
    fn keys_only_projections_are_rebuilt() {
        let t = table(
            ScalarAttributeType::S,
            vec![
                claim(keys_only()),
                by_sample(include(&["state"])),
                by_change(),
            ],
        );
        let Shape::Repairable(r) = judge(&t) else {
            panic!("{:?}", judge(&t))
        };
        assert_eq!(
            r,
            [
                Repair::Rebuild {
                    index: INDEX,
                    projects: "KEYS_ONLY".into(),
                    lacks: PROJECTED.to_vec()
                },
                Repair::Rebuild {
                    index: SAMPLE_INDEX,
                    projects: "INCLUDE".into(),
                    lacks: vec!["version", "after"]
                }
            ]
        );
        assert_eq!(
            r[0].problem(),
            "has index 'claim_by_shard' projecting KEYS_ONLY, without state, attempts, \
             max_attempts, version that anamo reads from it"
        );
    }

    #[test]
    fn a_numeric_task_id_is_refused() {
        let t = table(
            ScalarAttributeType::N,
            vec![
                claim(include(PROJECTED)),
                by_sample(include(SAMPLE_PROJECTED)),
                by_change(),
            ],
        );
        let Shape::Refused(line) = judge(&t) else {
            panic!()
        };
        assert!(
            line.starts_with("table t has attribute task_id of type N, not S (a string)"),
            "{line}"
        );
    }

    #[test]
    fn an_index_keyed_otherwise_is_refused_and_a_missing_one_added() {
        let t = table(
            ScalarAttributeType::S,
            vec![index(
                INDEX,
                &[COLLECTION, CLAIMABLE_AT],
                include(PROJECTED),
            )],
        );
        assert!(
            matches!(judge(&t), Shape::Refused(l) if l.contains("on (collection, claimable_at)"))
        );
        let t = table(ScalarAttributeType::S, vec![]);
        assert_eq!(
            judge(&t),
            Shape::Repairable(vec![
                Repair::AddClaimIndex { drop_legacy: false },
                Repair::AddSampleIndex,
                Repair::AddChangeIndex
            ])
        );
    }

    #[test]
    fn a_provisioned_table_says_its_units() {
        let mut t = table(
            ScalarAttributeType::S,
            vec![
                claim(include(PROJECTED)),
                by_sample(include(SAMPLE_PROJECTED)),
                by_change(),
            ],
        );
        t.billing_mode_summary = None;
        t.provisioned_throughput = Some(
            ProvisionedThroughputDescription::builder()
                .read_capacity_units(5)
                .write_capacity_units(5)
                .build(),
        );
        assert_eq!(
            judge(&t),
            Shape::Current {
                provisioned: Some((5, 5))
            }
        );
    }
}
