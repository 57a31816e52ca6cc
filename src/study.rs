//! One study is one task store and the catalog filled from it. These checks keep the two
//! together before a command writes anything: a catalog of another store (or of the same table
//! in another region) is said or refused, and a step that neither has heard of is a typo.

use crate::config::Context;
use crate::error::{Error, Result};
use crate::store::{OpenMode, StoreUrl, TaskStore};

/// Opens the store named by --store, as `ctx.store` does, and holds it to the catalog here
/// ([`catalog_of_another_store`]): a slip of region is refused even when that region has no
/// such table yet (rather than "does not exist; create it", which would make one).
pub fn open_store_for_catalog(ctx: &Context, mode: OpenMode) -> Result<Box<dyn TaskStore>> {
    match ctx.store(mode) {
        Ok(store) => {
            if let Some(note) = catalog_of_another_store(ctx, &store.identity())? {
                crate::note!("{note}");
            }
            Ok(store)
        }
        Err(e) => Err(slip_or(ctx, e)),
    }
}

/// A store that would not open (a table not there): when the catalog here holds the same
/// table in another region, the region slip is the error to show.
pub fn slip_or(ctx: &Context, e: Error) -> Error {
    if let Ok(StoreUrl::Dynamo(table)) = StoreUrl::parse(&ctx.store_url)
        && let Ok(store) = crate::store::dynamo::DynamoStore::connect(&table, &ctx.aws)
        && let Err(slip) = catalog_of_another_store(ctx, &store.identity())
    {
        return slip;
    }
    e
}

/// The catalog here holds another store's tasks. The same DynamoDB table in another region is
/// a slip of --region or AWS_REGION: refused before anything is written there. Another store
/// is said (`Some(note)`): its history does not apply, and `sync` will refuse this catalog.
pub fn catalog_of_another_store(ctx: &Context, identity: &str) -> Result<Option<String>> {
    if !ctx.catalog_path.exists() {
        return Ok(None);
    }
    let conn = crate::catalog::CatalogRead::open(&ctx.catalog_path)?;
    let Some(theirs) = conn.store_identity()? else {
        return Ok(None);
    };
    if theirs == identity {
        return Ok(None);
    }
    let catalog = ctx.catalog_path.display();
    let table = |id| crate::store::dynamo::table_and_region(id).map(|(t, _)| t);
    if table(&theirs).is_some() && table(&theirs) == table(identity) {
        return Err(Error::Invalid(format!(
            "catalog '{catalog}' holds the tasks of {theirs}, not {identity}: the same table in \
             another region is another store; check --region and AWS_REGION (or use another \
             --catalog if a second table there is meant)"
        )));
    }
    Ok(Some(format!(
        "catalog '{catalog}' holds the tasks of {theirs}, not of {identity}: its history is not \
         used here; sync this store into another --catalog (or `sync --store-changed` if it \
         is that store moved)"
    )))
}

/// When `collection` has no task in the store (and, given the catalog, none there either): the
/// message that says so and where to look. A typo must not read as a finished or empty step.
pub fn unknown_collection(
    store: &dyn TaskStore,
    collection: &str,
    catalog: Option<&crate::catalog::Catalog>,
) -> Result<Option<String>> {
    if crate::store::has_tasks(store, collection)? {
        return Ok(None);
    }
    let also = match catalog {
        Some(cat) if cat.steps()?.iter().any(|s| s == collection) => {
            return Ok(None);
        }
        Some(_) => " and none in the catalog",
        None => "",
    };
    Ok(Some(format!(
        "no task in collection '{collection}' in {}{also}; check the name (`anamo tasks counts` \
         lists the collections)",
        store.describe()
    )))
}
