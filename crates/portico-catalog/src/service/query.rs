//! Reading many entities at once, as Backstage's catalog API does: the legacy list
//! (`GET /entities`), the cursor-paginated query (`GET /entities/by-query`) and facets
//! (`GET /entity-facets`).
//!
//! Everything is answered from the search rows (`catalog_search`, one row per flattened
//! `(key, value)` of an entity), mostly through the `(key, value, entity_ref)` index:
//!
//! - each alternative of a filter is driven by one condition's index range (the most selective
//!   equality condition), the other conditions are `EXISTS` probes per row;
//! - a `kind=<k>` condition next to another one becomes a range on the entity reference instead
//!   (the kind is the reference's prefix), which turns the common "kind plus something" filter
//!   into one index range with no probes. SQLite only, and only after checking that no stored
//!   entity has a kind that would make the prefix ambiguous (an invalid kind containing `:`, or
//!   one too long to be indexed);
//! - a sort key sorts by the smallest search value of each entity; entities without one come
//!   last in both directions; the entity reference breaks ties, in the direction of the first
//!   key (as Backstage does). Text compares by bytes on both databases (PostgreSQL gets
//!   `COLLATE "C"`), so pages are identical on both. On SQLite a single sort key is read along
//!   its own index when the matches are dense enough, so a page costs a few hundred rows rather
//!   than a lookup per match;
//! - `by-query` pages are keyset pages: a cursor carries the query, the direction, the sort key
//!   of the boundary item and the total, so later pages neither skip nor repeat items while the
//!   data stays the same, and the total is counted once (on the first page, beside reading the
//!   page when a spare connection is at hand).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use portico_store::Backend;
use portico_store::sqlx::{self, AnyConnection, AssertSqlSafe, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::filter::{EntityFilter, Fields, FilterCondition};
use super::memory::{QueryIndex, Snapshot};
use super::persist::load_entities;
use super::{Catalog, CatalogError};

/// Items per `by-query` page unless the request says otherwise.
pub const DEFAULT_QUERY_LIMIT: u64 = 20;

/// Keys searched by a full-text filter when neither the request nor its order names any.
pub const DEFAULT_FULL_TEXT_FIELDS: &[&str] = &["metadata.name", "metadata.title"];

/// When a filter alternative has several equality conditions, each one's rows are counted up
/// to this many to pick the one that drives the query.
const ESTIMATE_CAP: i64 = 1000;

/// At most this many rows of a sort key are read for one page along its index before the
/// general plan (a lookup per match, then a sort) takes over.
#[cfg(not(test))]
const SORT_SCAN_BUDGET: u64 = 4000;
/// Small in unit tests, so that they reach the fallback.
#[cfg(test)]
const SORT_SCAN_BUDGET: u64 = 6;

/// Direction of a sort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Sort by the value of a search key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderField {
    /// The search key, lowercased (`metadata.name`).
    #[serde(rename = "f")]
    pub field: String,
    /// The direction.
    #[serde(rename = "o")]
    pub order: SortOrder,
}

impl OrderField {
    /// Sort by `field` (lowercased) in `order`.
    pub fn new(field: &str, order: SortOrder) -> Self {
        Self {
            field: field.trim().to_lowercase(),
            order,
        }
    }

    /// `by-query`'s `orderField`: `field` or `field,asc|desc`.
    pub fn parse_query(param: &str) -> Result<Self, CatalogError> {
        let (field, order) = match param.split_once(',') {
            Some((field, order)) => (field.trim(), Some(order.trim())),
            None => (param.trim(), None),
        };
        let order = match order.map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => SortOrder::Asc,
            Some("desc") => SortOrder::Desc,
            Some(_) => {
                return Err(CatalogError::Input(format!(
                    "Invalid orderField \"{param}\", the order must be asc or desc"
                )));
            }
        };
        if field.is_empty() {
            return Err(CatalogError::Input(format!(
                "Invalid orderField \"{param}\", the field is empty"
            )));
        }
        Ok(Self::new(field, order))
    }

    /// The legacy list's `order`: `asc:field` or `desc:field`.
    pub fn parse_legacy(param: &str) -> Result<Self, CatalogError> {
        let invalid = || {
            CatalogError::Input(format!(
                "Invalid order parameter \"{param}\", expected \"<asc or desc>:<field name>\""
            ))
        };
        let (order, field) = param.split_once(':').ok_or_else(invalid)?;
        let order = match order {
            "asc" => SortOrder::Asc,
            "desc" => SortOrder::Desc,
            _ => return Err(invalid()),
        };
        if field.trim().is_empty() {
            return Err(invalid());
        }
        Ok(Self::new(field, order))
    }
}

/// `GET /entities`: the legacy list.
#[derive(Debug, Clone, Default)]
pub struct EntitiesRequest {
    /// Which entities.
    pub filter: EntityFilter,
    /// Which parts of each.
    pub fields: Fields,
    /// Sort keys, in priority order; the entity reference always breaks ties. Empty sorts by
    /// reference.
    pub order: Vec<OrderField>,
    /// Entities to skip.
    pub offset: Option<u64>,
    /// At most this many entities; all when `None`.
    pub limit: Option<u64>,
    /// Backstage's `after` cursor (base64 JSON `{limit, offset}`); overrides `limit` and `offset`.
    pub after: Option<String>,
}

impl EntitiesRequest {
    /// From the query string's pairs (`filter`, `fields`, `order`, `offset`, `limit`, `after`;
    /// others are ignored).
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, CatalogError> {
        let params = Params::collect(pairs);
        Ok(Self {
            filter: EntityFilter::parse(&params.all("filter"))?,
            fields: Fields::parse(&params.all("fields"))?,
            order: params
                .all("order")
                .iter()
                .map(|o| OrderField::parse_legacy(o))
                .collect::<Result<_, _>>()?,
            offset: params.integer("offset")?,
            limit: params.integer("limit")?,
            after: params.single("after")?.map(str::to_string),
        })
    }
}

/// One page of the legacy list.
#[derive(Debug, Clone, PartialEq)]
pub struct EntitiesPage {
    /// The entities.
    pub items: Vec<Value>,
    /// The `after` cursor of the next page, when there is one (for a `Link: rel="next"` header).
    pub next_after: Option<String>,
}

/// `GET /entities/by-query`.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    /// Which entities (ignored with a cursor).
    pub filter: EntityFilter,
    /// Which parts of each.
    pub fields: Fields,
    /// Sort keys (ignored with a cursor); the entity reference always breaks ties.
    pub order_fields: Vec<OrderField>,
    /// Case-insensitive substring to look for (ignored with a cursor).
    pub full_text_term: Option<String>,
    /// Keys the term is looked for in; default: the sort keys, else [`DEFAULT_FULL_TEXT_FIELDS`].
    pub full_text_fields: Vec<String>,
    /// Items to skip on the first page (ignored with a cursor).
    pub offset: Option<u64>,
    /// Items per page; default [`DEFAULT_QUERY_LIMIT`].
    pub limit: Option<u64>,
    /// A `nextCursor` or `prevCursor` of an earlier page.
    pub cursor: Option<String>,
}

impl QueryRequest {
    /// From the query string's pairs (`filter`, `fields`, `orderField`, `fullTextFilterTerm`,
    /// `fullTextFilterFields`, `offset`, `limit`, `cursor`; others are ignored).
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, CatalogError> {
        let params = Params::collect(pairs);
        Ok(Self {
            filter: EntityFilter::parse(&params.all("filter"))?,
            fields: Fields::parse(&params.all("fields"))?,
            order_fields: params
                .all("orderField")
                .iter()
                .map(|o| OrderField::parse_query(o))
                .collect::<Result<_, _>>()?,
            full_text_term: params.single("fullTextFilterTerm")?.map(str::to_string),
            full_text_fields: params
                .all("fullTextFilterFields")
                .iter()
                .flat_map(|f| f.split(','))
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
            offset: params.integer("offset")?,
            limit: params.integer("limit")?,
            cursor: params.single("cursor")?.map(str::to_string),
        })
    }
}

/// One page of `by-query`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage {
    /// The entities of this page.
    pub items: Vec<Value>,
    /// How many entities the query matches in all (counted on the first page).
    pub total_items: u64,
    /// Cursors to the neighbouring pages.
    pub page_info: PageInfo,
}

/// Cursors to the pages around a `by-query` page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    /// The page after this one, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The page before this one, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_cursor: Option<String>,
}

/// `GET /entity-facets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facets {
    /// Per requested facet (as written), its values.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
}

/// One value of a facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetCount {
    /// The value as written in the entities.
    pub value: String,
    /// How many entities have it.
    pub count: u64,
}

impl Catalog {
    /// `GET /entities`: the entities the filter matches, sorted, offset and limited, projected.
    pub async fn entities(&self, req: &EntitiesRequest) -> Result<Vec<Value>, CatalogError> {
        Ok(self.entities_page(req).await?.items)
    }

    /// [`Catalog::entities`] plus the `after` cursor of the next page, as Backstage gives it.
    pub async fn entities_page(&self, req: &EntitiesRequest) -> Result<EntitiesPage, CatalogError> {
        let (mut offset, mut limit) = (req.offset, req.limit);
        if let Some(after) = &req.after {
            let (after_limit, after_offset) = decode_after(after)?;
            limit = after_limit.or(limit);
            offset = after_offset.or(offset);
        }
        let window = Window {
            boundary: None,
            backwards: false,
            offset: offset.unwrap_or(0),
            limit: limit.map(|l| l.saturating_add(1)),
        };
        // One extra row tells whether a next page follows.
        let page = |mut rows: Vec<PageRow>| {
            let more = limit.is_some_and(|l| rows.len() as u64 > l);
            if let Some(l) = limit {
                rows.truncate(usize::try_from(l).unwrap_or(usize::MAX));
            }
            let refs: Vec<String> = rows.into_iter().map(|r| r.entity_ref).collect();
            (refs, more)
        };
        let (items, more) = match self.memory_snapshot().await? {
            Some(snapshot) => {
                let matches = snapshot.matches(&req.filter, None);
                let (refs, more) = page(snapshot.page(&matches, &req.order, &window));
                (snapshot.materialize(&refs, &req.fields), more)
            }
            None => {
                let mut conn = self.store.pool().acquire().await?;
                let dialect = Dialect::of(self.store.backend());
                let source = Source::plan(&mut conn, dialect, &req.filter).await?;
                let rows = fetch_page(&mut conn, dialect, &source, None, &req.order, &window, None)
                    .await?;
                let (refs, more) = page(rows);
                (materialize(&mut conn, &refs, &req.fields).await?, more)
            }
        };
        let next_after = match (more, limit) {
            (true, Some(l)) => Some(encode_after(l, offset.unwrap_or(0).saturating_add(l))),
            _ => None,
        };
        Ok(EntitiesPage { items, next_after })
    }

    /// `GET /entities/by-query`: one keyset page of the entities a query matches.
    pub async fn query_entities(&self, req: &QueryRequest) -> Result<QueryPage, CatalogError> {
        let limit = req.limit.unwrap_or(DEFAULT_QUERY_LIMIT);
        let (query, boundary, backwards, total) = match &req.cursor {
            Some(text) => {
                let cursor = Cursor::decode(text)?;
                let query = Query {
                    filter: cursor.filter,
                    order: cursor.order,
                    full_text: cursor.full_text,
                };
                (
                    query,
                    Some(cursor.boundary),
                    cursor.previous,
                    Some(cursor.total_items),
                )
            }
            None => (Query::from_request(req), None, false, None),
        };
        let offset = if req.cursor.is_none() {
            req.offset.unwrap_or(0)
        } else {
            0
        };
        let window = Window {
            boundary: boundary.clone(),
            backwards,
            offset,
            limit: Some(limit.saturating_add(1)),
        };
        let (total_items, (rows, more, items)) = match self.memory_snapshot().await? {
            Some(snapshot) => {
                let matches = snapshot.matches(&query.filter, query.full_text.as_ref());
                let total = total.unwrap_or_else(|| matches.count());
                let rows = if limit == 0 {
                    Vec::new()
                } else {
                    snapshot.page(&matches, &query.order, &window)
                };
                let (rows, more) = cut_page(rows, limit, backwards);
                let refs: Vec<String> = rows.iter().map(|r| r.entity_ref.clone()).collect();
                let items = snapshot.materialize(&refs, &req.fields);
                (total, (rows, more, items))
            }
            None => {
                self.query_in_database(&query, &window, limit, total, &req.fields)
                    .await?
            }
        };
        // Going forward, there is a next page when the extra row came back, and a previous one
        // when this page starts after something. Going backward, the other way round.
        let (has_next, has_prev) = if backwards {
            (!rows.is_empty(), more)
        } else {
            (more, boundary.is_some() || offset > 0)
        };
        let cursor = |key: &SortKey, previous: bool| {
            Cursor {
                filter: query.filter.clone(),
                order: query.order.clone(),
                full_text: query.full_text.clone(),
                previous,
                boundary: key.clone(),
                total_items,
            }
            .encode()
        };
        let page_info = PageInfo {
            next_cursor: rows
                .last()
                .filter(|_| has_next)
                .map(|r| cursor(&r.key, false)),
            prev_cursor: rows
                .first()
                .filter(|_| has_prev)
                .map(|r| cursor(&r.key, true)),
        };
        Ok(QueryPage {
            items,
            total_items,
            page_info,
        })
    }

    /// Loads the in-memory copy now (when the catalog keeps one), so the first queries need not
    /// wait for it: `serve` calls this at start.
    pub async fn warm_query_index(&self) -> Result<(), CatalogError> {
        if self.options.query_index != QueryIndex::Database {
            self.memory.rebuild(&self.store).await?;
        }
        Ok(())
    }

    /// The in-memory copy to answer from, when the catalog keeps one and it is current.
    async fn memory_snapshot(&self) -> Result<Option<Arc<Snapshot>>, CatalogError> {
        self.memory
            .current(&self.store, self.options.query_index)
            .await
    }

    /// One `by-query` page from the SQL engine: the total and the page's rows and entities.
    async fn query_in_database(
        &self,
        query: &Query,
        window: &Window,
        limit: u64,
        total: Option<u64>,
        fields: &Fields,
    ) -> Result<(u64, (Vec<PageRow>, bool, Vec<Value>)), CatalogError> {
        let mut conn = self.store.pool().acquire().await?;
        let dialect = Dialect::of(self.store.backend());
        let source = Source::plan(&mut conn, dialect, &query.filter).await?;
        let full_text = query.full_text.as_ref();
        let page = PageRead {
            dialect,
            source: &source,
            full_text,
            order: &query.order,
            window,
            limit,
            fields,
        };
        Ok(match total {
            Some(total) => (total, page.run(&mut conn, Some(total)).await?),
            // A single sort key reads along its index only when the matches are not too sparse,
            // which the total tells: count first.
            None if query.order.len() == 1 => {
                let total = count(&mut conn, dialect, &source, full_text).await?;
                (total, page.run(&mut conn, Some(total)).await?)
            }
            // Otherwise the page does not depend on the total: count meanwhile on a second
            // connection when one is idle (both databases let readers run side by side). Never
            // wait for one while holding this one: busy pools would deadlock.
            None => match self.spare_connection().await {
                Some(mut other) => {
                    let counting = count(&mut other, dialect, &source, full_text);
                    tokio::try_join!(counting, page.run(&mut conn, None))?
                }
                None => {
                    let total = count(&mut conn, dialect, &source, full_text).await?;
                    (total, page.run(&mut conn, None).await?)
                }
            },
        })
    }

    /// A second connection for work that can run beside the current one: an idle one, or a new
    /// one while the pool is below its size; `None` rather than waiting for a busy pool.
    async fn spare_connection(&self) -> Option<sqlx::pool::PoolConnection<sqlx::Any>> {
        let pool = self.store.pool();
        if let Some(idle) = pool.try_acquire() {
            return Some(idle);
        }
        if pool.size() >= pool.options().get_max_connections() {
            return None;
        }
        tokio::time::timeout(std::time::Duration::from_millis(20), pool.acquire())
            .await
            .ok()?
            .ok()
    }

    /// `GET /entity-facets`: for each facet key, its distinct values (as written) among the
    /// entities the filter matches, with how many entities have each; most frequent first,
    /// then by value.
    pub async fn facets(
        &self,
        facets: &[String],
        filter: &EntityFilter,
    ) -> Result<Facets, CatalogError> {
        let mut conn = self.store.pool().acquire().await?;
        let dialect = Dialect::of(self.store.backend());
        let source = Source::plan(&mut conn, dialect, filter).await?;
        let mut out = Facets::default();
        for facet in facets {
            if out.facets.contains_key(facet) {
                continue;
            }
            let key = facet.trim().to_lowercase();
            let mut sql = Sql::new(dialect);
            let key_arg = sql.text(&key);
            sql.push(&format!(
                "SELECT f.original, COUNT(DISTINCT f.entity_ref) FROM catalog_search f WHERE f.key = {key_arg} AND f.original IS NOT NULL"
            ));
            match &source {
                Source::All if key.starts_with("relations.") => {
                    // Relation rows can name entities that are not in the catalog.
                    sql.push(" AND EXISTS (SELECT 1 FROM catalog_entities e WHERE e.entity_ref = f.entity_ref)");
                }
                Source::All => {}
                Source::Branches(_) => {
                    sql.push(" AND f.entity_ref IN (");
                    source.select_refs(&mut sql, Extra::default(), &RefRange::default());
                    sql.push(")");
                }
            }
            sql.push(" GROUP BY f.original");
            let mut values = Vec::new();
            for row in sql.query().fetch_all(&mut *conn).await? {
                let value: String = row.try_get(0)?;
                let count: i64 = row.try_get(1)?;
                values.push(FacetCount {
                    value,
                    count: u64::try_from(count).unwrap_or(0),
                });
            }
            values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            out.facets.insert(facet.clone(), values);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Request parameters

/// Query-string pairs grouped by name.
struct Params<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    fn collect(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            pairs: pairs.into_iter().collect(),
        }
    }

    fn all(&self, name: &str) -> Vec<&'a str> {
        self.pairs
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .collect()
    }

    fn single(&self, name: &str) -> Result<Option<&'a str>, CatalogError> {
        match self.all(name).as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(CatalogError::Input(format!(
                "Invalid {name}, expected a single value"
            ))),
        }
    }

    fn integer(&self, name: &str) -> Result<Option<u64>, CatalogError> {
        self.single(name)?
            .map(|v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| n.to_string() == v)
                    .ok_or_else(|| {
                        CatalogError::Input(format!("Invalid {name}, not a non-negative integer"))
                    })
            })
            .transpose()
    }
}

/// What a `by-query` page is about: the part a cursor carries.
struct Query {
    filter: EntityFilter,
    order: Vec<OrderField>,
    full_text: Option<FullText>,
}

impl Query {
    fn from_request(req: &QueryRequest) -> Self {
        let term = req
            .full_text_term
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let full_text = term.map(|term| {
            let mut keys: Vec<String> = req
                .full_text_fields
                .iter()
                .map(|f| f.trim().to_lowercase())
                .collect();
            if keys.is_empty() {
                keys = req.order_fields.iter().map(|o| o.field.clone()).collect();
            }
            if keys.is_empty() {
                keys = DEFAULT_FULL_TEXT_FIELDS
                    .iter()
                    .map(|f| (*f).to_string())
                    .collect();
            }
            keys.sort();
            keys.dedup();
            FullText {
                term: term.to_lowercase(),
                keys,
            }
        });
        Self {
            filter: req.filter.clone(),
            order: req.order_fields.clone(),
            full_text,
        }
    }
}

/// A full-text filter: the lowercased term and the keys to look in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FullText {
    #[serde(rename = "t")]
    pub(crate) term: String,
    #[serde(rename = "k")]
    pub(crate) keys: Vec<String>,
}

impl FullText {
    /// A `LIKE` pattern matching the term anywhere, with `\` as the escape character.
    fn pattern(&self) -> String {
        let mut pattern = String::from("%");
        for c in self.term.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// Where an item sits in the sort: its sort values (`None` = missing) and its reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SortKey {
    #[serde(rename = "v", default)]
    pub(crate) values: Vec<Option<String>>,
    #[serde(rename = "r")]
    pub(crate) entity_ref: String,
}

/// What `nextCursor` and `prevCursor` carry: the query, the direction, the item next to which
/// the page starts, and the total counted on the first page.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    #[serde(rename = "f", default)]
    filter: EntityFilter,
    #[serde(rename = "o", default)]
    order: Vec<OrderField>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    full_text: Option<FullText>,
    #[serde(rename = "p", default)]
    previous: bool,
    #[serde(rename = "b")]
    boundary: SortKey,
    #[serde(rename = "n")]
    total_items: u64,
}

impl Cursor {
    fn encode(&self) -> String {
        base64url::encode(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }

    fn decode(text: &str) -> Result<Self, CatalogError> {
        let malformed = || CatalogError::Input("Malformed cursor, could not be parsed".into());
        let bytes = base64url::decode(text.trim()).ok_or_else(malformed)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
        if cursor.boundary.values.len() != cursor.order.len() {
            return Err(malformed());
        }
        Ok(cursor)
    }
}

/// Backstage's legacy `after` cursor: base64 of `{"limit": n, "offset": n}`.
fn decode_after(text: &str) -> Result<(Option<u64>, Option<u64>), CatalogError> {
    let malformed = |what: &str| CatalogError::Input(format!("Malformed after cursor, {what}"));
    let bytes = base64url::decode(text.trim()).ok_or_else(|| malformed("could not be parsed"))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("could not be parsed"))?;
    let number = |name: &str| match value.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| malformed(&format!("{name} was not a number"))),
    };
    Ok((number("limit")?, number("offset")?))
}

fn encode_after(limit: u64, offset: u64) -> String {
    base64url::encode_standard(
        serde_json::json!({"limit": limit, "offset": offset})
            .to_string()
            .as_bytes(),
    )
}

// ---------------------------------------------------------------------------------------------
// SQL

/// The few things SQLite and PostgreSQL need said differently.
#[derive(Debug, Clone, Copy)]
struct Dialect {
    backend: Backend,
}

impl Dialect {
    fn of(backend: Backend) -> Self {
        Self { backend }
    }

    /// Appended to text in comparisons and sorts so both databases compare bytes (SQLite's
    /// default `BINARY`; PostgreSQL's `"C"`, whatever the database's collation).
    fn collate(self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " COLLATE \"C\"",
        }
    }

    /// Makes SQLite look up one entity's rows of a key through `catalog_search_entity`
    /// (`entity_ref, key, …`). Without statistics SQLite rates `key = ?` on the covering
    /// `(key, value, entity_ref)` index as good as `entity_ref = ? AND key = ?`, prefers the
    /// covering one, and then scans every row of the key for each entity. PostgreSQL plans from
    /// statistics and needs no hint.
    fn by_entity_hint(self) -> &'static str {
        match self.backend {
            Backend::Sqlite => " INDEXED BY catalog_search_entity",
            Backend::Postgres => "",
        }
    }

    /// Whether a single sort key may be read along its index (SQLite: the index is in byte
    /// order; PostgreSQL's index has the database's collation, not the `"C"` order used here).
    fn sort_along_index(self) -> bool {
        matches!(self.backend, Backend::Sqlite)
    }

    /// Whether `kind` conditions may be answered from the reference prefix. On PostgreSQL the
    /// check that the prefix is exact needs a byte-order range over the kind values, which its
    /// index (in the database's collation) cannot serve, so there `kind` stays a probe.
    fn kind_as_prefix(self) -> bool {
        matches!(self.backend, Backend::Sqlite)
    }
}

/// A bound value.
enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text with its bound values, `$1`, `$2`, … in the order they were added.
struct Sql {
    text: String,
    args: Vec<Arg>,
    dialect: Dialect,
}

impl Sql {
    fn new(dialect: Dialect) -> Self {
        Self {
            text: String::new(),
            args: Vec::new(),
            dialect,
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Binds a text value; returns its placeholder.
    fn text(&mut self, value: &str) -> String {
        self.args.push(Arg::Text(value.to_string()));
        format!("${}", self.args.len())
    }

    /// Binds an integer; returns its placeholder.
    fn int(&mut self, value: u64) -> String {
        self.args
            .push(Arg::Int(i64::try_from(value).unwrap_or(i64::MAX)));
        format!("${}", self.args.len())
    }

    /// `IN (…)` or `= …` for a list of text values.
    fn one_of(&mut self, values: &[String]) -> String {
        match values {
            // No value to match: nothing matches.
            [] => " IN (NULL)".into(),
            [one] => format!(" = {}", self.text(one)),
            many => {
                let list: Vec<String> = many.iter().map(|v| self.text(v)).collect();
                format!(" IN ({})", list.join(", "))
            }
        }
    }

    fn query(&self) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text.clone()));
        for arg in &self.args {
            query = match arg {
                Arg::Text(s) => query.bind(s.clone()),
                Arg::Int(i) => query.bind(*i),
            };
        }
        query
    }
}

/// A range of entity references; bounds are `(value, inclusive)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RefRange {
    lo: Option<(String, bool)>,
    hi: Option<(String, bool)>,
}

impl RefRange {
    /// References of entities of `kind` (lowercase, no `:`): `kind:` up to, without, `kind;`.
    fn kind(kind: &str) -> Self {
        Self {
            lo: Some((format!("{kind}:"), true)),
            hi: Some((format!("{kind};"), false)),
        }
    }

    fn after(entity_ref: &str) -> Self {
        Self {
            lo: Some((entity_ref.to_string(), false)),
            hi: None,
        }
    }

    fn before(entity_ref: &str) -> Self {
        Self {
            lo: None,
            hi: Some((entity_ref.to_string(), false)),
        }
    }

    /// Both ranges at once (bytewise comparison, as the database does).
    fn and(&self, other: &RefRange) -> RefRange {
        let lo = match (&self.lo, &other.lo) {
            (Some(a), Some(b)) => Some(if a.0 > b.0 || (a.0 == b.0 && !a.1) {
                a.clone()
            } else {
                b.clone()
            }),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let hi = match (&self.hi, &other.hi) {
            (Some(a), Some(b)) => Some(if a.0 < b.0 || (a.0 == b.0 && !a.1) {
                a.clone()
            } else {
                b.clone()
            }),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        RefRange { lo, hi }
    }

    fn is_empty_range(&self) -> bool {
        matches!((&self.lo, &self.hi), (Some(lo), Some(hi)) if lo.0 > hi.0 || (lo.0 == hi.0 && !(lo.1 && hi.1)))
    }

    /// ` AND col >= $n AND col < $m` (or nothing).
    fn render(&self, sql: &mut Sql, column: &str) -> String {
        let mut out = String::new();
        let collate = sql.dialect.collate();
        if let Some((value, inclusive)) = &self.lo {
            let arg = sql.text(value);
            out.push_str(&format!(
                " AND {column}{collate} {} {arg}",
                if *inclusive { ">=" } else { ">" }
            ));
        }
        if let Some((value, inclusive)) = &self.hi {
            let arg = sql.text(value);
            out.push_str(&format!(
                " AND {column}{collate} {} {arg}",
                if *inclusive { "<=" } else { "<" }
            ));
        }
        out
    }
}

/// One alternative of a filter, ready to run: the condition whose index range drives it, the
/// kinds read from the reference, and the conditions probed per row.
#[derive(Debug, Clone)]
struct Branch {
    driver: FilterCondition,
    /// Each entry: the kinds (any of) the reference must start with.
    kinds: Vec<Vec<String>>,
    checks: Vec<FilterCondition>,
    /// Whether the row's entity must be checked to exist (only relation rows can name entities
    /// that are not stored).
    check_exists: bool,
}

/// The set of entities a filter matches.
#[derive(Debug, Clone)]
enum Source {
    All,
    Branches(Vec<Branch>),
}

/// Conditions a matching entity must meet beside the filter.
#[derive(Debug, Clone, Copy, Default)]
struct Extra<'a> {
    /// The full-text filter.
    full_text: Option<&'a FullText>,
    /// The entity has no value for this key (the tail of a sort by it).
    without_key: Option<&'a str>,
}

impl Extra<'_> {
    /// ` AND …` on the reference column `col`.
    fn render(&self, sql: &mut Sql, col: &str) -> String {
        let hint = sql.dialect.by_entity_hint();
        let mut out = String::new();
        if let Some(full_text) = self.full_text {
            let keys = sql.one_of(&full_text.keys);
            let pattern = sql.text(&full_text.pattern());
            out.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM catalog_search t{hint} WHERE t.entity_ref = {col} AND t.key{keys} AND t.value LIKE {pattern} ESCAPE '\\')"
            ));
        }
        if let Some(key) = self.without_key {
            let key = sql.text(key);
            out.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM catalog_search w{hint} WHERE w.entity_ref = {col} AND w.key = {key} AND w.value IS NOT NULL)"
            ));
        }
        out
    }
}

impl Source {
    async fn plan(
        conn: &mut AnyConnection,
        dialect: Dialect,
        filter: &EntityFilter,
    ) -> Result<Self, CatalogError> {
        if filter.is_empty() {
            return Ok(Source::All);
        }
        let mut branches = Vec::new();
        for conditions in filter.alternatives() {
            branches.push(plan_branch(conn, dialect, conditions).await?);
        }
        Ok(Source::Branches(branches))
    }

    /// `SELECT d.entity_ref FROM …` of the matching entities within `range` (one alternative
    /// alone may repeat a reference; several are a `UNION`).
    fn select_refs(&self, sql: &mut Sql, extra: Extra<'_>, range: &RefRange) {
        match self {
            Source::All => {
                sql.push("SELECT d.entity_ref FROM catalog_entities d WHERE 1 = 1");
                let bounds = range.render(sql, "d.entity_ref");
                sql.push(&bounds);
                let extra = extra.render(sql, "d.entity_ref");
                sql.push(&extra);
            }
            Source::Branches(branches) => {
                for (i, branch) in branches.iter().enumerate() {
                    if i > 0 {
                        sql.push(" UNION ");
                    }
                    branch.select(sql, "d.entity_ref", extra, range);
                }
            }
        }
    }

    /// A condition on the reference column `col` of some other rows: the entity matches.
    fn predicate(&self, sql: &mut Sql, col: &str, extra: Extra<'_>) -> String {
        let mut out = match self {
            Source::All => "1 = 1".to_string(),
            Source::Branches(branches) => {
                let parts: Vec<String> = branches
                    .iter()
                    .map(|b| {
                        format!(
                            "(1 = 1{})",
                            b.conditions(sql, col, true, &RefRange::default())
                        )
                    })
                    .collect();
                format!("({})", parts.join(" OR "))
            }
        };
        out.push_str(&extra.render(sql, col));
        out
    }

    /// Whether [`Source::select_refs`] can return the same reference twice.
    fn may_repeat(&self) -> bool {
        matches!(self, Source::Branches(b) if b.len() == 1)
    }
}

impl Branch {
    /// `SELECT <projection> FROM catalog_search d WHERE …`: the driver's index range, then the
    /// other conditions per row.
    fn select(&self, sql: &mut Sql, projection: &str, extra: Extra<'_>, range: &RefRange) {
        let key = sql.text(&self.driver.key);
        sql.push(&format!(
            "SELECT {projection} FROM catalog_search d WHERE d.key = {key}"
        ));
        if let Some(values) = &self.driver.values {
            let values = sql.one_of(values);
            sql.push(&format!(" AND d.value{values}"));
        }
        let rest = self.conditions(sql, "d.entity_ref", false, range);
        sql.push(&rest);
        let extra = extra.render(sql, "d.entity_ref");
        sql.push(&extra);
    }

    /// ` AND …` on the reference column `col`: the kinds (the first merged with `range` into
    /// one range), the probed conditions, existence, and the driver itself when `with_driver`.
    fn conditions(&self, sql: &mut Sql, col: &str, with_driver: bool, range: &RefRange) -> String {
        let mut out = String::new();
        if with_driver {
            out.push_str(&exists(sql, &self.driver, col, "cd"));
        }
        let mut kinds = self.kinds.iter();
        let ranges: Vec<RefRange> = match kinds.next() {
            Some(first) => first
                .iter()
                .map(|k| RefRange::kind(k).and(range))
                .filter(|r| !r.is_empty_range())
                .collect(),
            None => vec![range.clone()],
        };
        match ranges.as_slice() {
            [] => out.push_str(" AND 1 = 0"),
            [one] => out.push_str(&one.render(sql, col)),
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|r| format!("(1 = 1{})", r.render(sql, col)))
                    .collect();
                out.push_str(&format!(" AND ({})", parts.join(" OR ")));
            }
        }
        for other in kinds {
            let parts: Vec<String> = other
                .iter()
                .map(|k| format!("(1 = 1{})", RefRange::kind(k).render(sql, col)))
                .collect();
            out.push_str(&format!(" AND ({})", parts.join(" OR ")));
        }
        for (i, check) in self.checks.iter().enumerate() {
            out.push_str(&exists(sql, check, col, &format!("c{i}")));
        }
        if self.check_exists {
            out.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM catalog_entities e WHERE e.entity_ref = {col})"
            ));
        }
        out
    }
}

/// ` AND EXISTS (…)`: the entity at `col` has a search row meeting `condition`.
fn exists(sql: &mut Sql, condition: &FilterCondition, col: &str, alias: &str) -> String {
    let key = sql.text(&condition.key);
    match &condition.values {
        // `(key, value, entity_ref)`, all three fixed.
        Some(values) => {
            let values = sql.one_of(values);
            format!(
                " AND EXISTS (SELECT 1 FROM catalog_search {alias} WHERE {alias}.key = {key} AND {alias}.value{values} AND {alias}.entity_ref = {col})"
            )
        }
        None => {
            let hint = sql.dialect.by_entity_hint();
            format!(
                " AND EXISTS (SELECT 1 FROM catalog_search {alias}{hint} WHERE {alias}.entity_ref = {col} AND {alias}.key = {key})"
            )
        }
    }
}

/// Chooses how to run one filter alternative.
async fn plan_branch(
    conn: &mut AnyConnection,
    dialect: Dialect,
    conditions: &[FilterCondition],
) -> Result<Branch, CatalogError> {
    let is_kind = |c: &FilterCondition| {
        dialect.kind_as_prefix()
            && c.key == "kind"
            && c.values
                .as_ref()
                .is_some_and(|vs| vs.iter().all(|v| plain_kind(v)))
    };
    let mut kinds: Vec<&FilterCondition> = conditions.iter().filter(|c| is_kind(c)).collect();
    let mut equal: Vec<&FilterCondition> = conditions
        .iter()
        .filter(|c| !is_kind(c) && c.values.is_some())
        .collect();
    let mut exist: Vec<&FilterCondition> =
        conditions.iter().filter(|c| c.values.is_none()).collect();

    let driver = if equal.len() > 1 {
        let mut best = (i64::MAX, 0);
        for (i, condition) in equal.iter().enumerate() {
            let n = estimate(conn, dialect, condition).await?;
            if n < best.0 {
                best = (n, i);
            }
        }
        equal.remove(best.1)
    } else if !equal.is_empty() {
        equal.remove(0)
    } else if !kinds.is_empty() {
        kinds.remove(0)
    } else {
        // Only existence conditions: prefer one whose rows are the entity's own.
        let i = exist
            .iter()
            .position(|c| !c.key.starts_with("relations."))
            .unwrap_or(0);
        exist.remove(i)
    };
    let mut checks: Vec<FilterCondition> = equal.into_iter().chain(exist).cloned().collect();
    let mut kind_prefixes = Vec::new();
    for kind in kinds {
        let values = kind.values.clone().unwrap_or_default();
        if prefix_is_exact(conn, dialect, &values).await? {
            kind_prefixes.push(values);
        } else {
            checks.push(kind.clone());
        }
    }
    let own_row = |c: &FilterCondition| !c.key.starts_with("relations.");
    let check_exists = !own_row(driver) && !checks.iter().any(own_row);
    Ok(Branch {
        driver: driver.clone(),
        kinds: kind_prefixes,
        checks,
        check_exists,
    })
}

/// Whether a kind value looks like a valid kind, lowercased: letters and digits only.
fn plain_kind(value: &str) -> bool {
    let mut chars = value.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Whether "`kind` is one of `kinds`" equals "the reference starts with `<kind>:`" for every
/// stored entity. A reference is `<lowercased kind>:<namespace>/<name>`, so it only differs
/// when a stored kind itself starts with `<kind>:` (an invalid kind), or when a kind is too long
/// to be indexed (its value row is NULL and could not be told apart).
async fn prefix_is_exact(
    conn: &mut AnyConnection,
    dialect: Dialect,
    kinds: &[String],
) -> Result<bool, CatalogError> {
    let mut sql = Sql::new(dialect);
    let collate = dialect.collate();
    sql.push("SELECT COUNT(*) FROM (SELECT 1 AS x FROM catalog_search WHERE key = 'kind' AND value IS NULL");
    for kind in kinds {
        let lo = sql.text(&format!("{kind}:"));
        let hi = sql.text(&format!("{kind};"));
        sql.push(&format!(
            " UNION ALL SELECT 1 AS x FROM catalog_search WHERE key = 'kind' AND value{collate} >= {lo} AND value{collate} < {hi}"
        ));
    }
    sql.push(") k");
    let n: i64 = sql.query().fetch_one(&mut *conn).await?.try_get(0)?;
    Ok(n == 0)
}

/// How many rows a condition has, counted up to [`ESTIMATE_CAP`].
async fn estimate(
    conn: &mut AnyConnection,
    dialect: Dialect,
    condition: &FilterCondition,
) -> Result<i64, CatalogError> {
    let mut sql = Sql::new(dialect);
    let key = sql.text(&condition.key);
    sql.push(&format!(
        "SELECT COUNT(*) FROM (SELECT 1 AS x FROM catalog_search WHERE key = {key}"
    ));
    if let Some(values) = &condition.values {
        let values = sql.one_of(values);
        sql.push(&format!(" AND value{values}"));
    }
    let cap = sql.int(ESTIMATE_CAP as u64);
    sql.push(&format!(" LIMIT {cap}) s"));
    Ok(sql.query().fetch_one(&mut *conn).await?.try_get(0)?)
}

/// How many entities match.
async fn count(
    conn: &mut AnyConnection,
    dialect: Dialect,
    source: &Source,
    full_text: Option<&FullText>,
) -> Result<u64, CatalogError> {
    let mut sql = Sql::new(dialect);
    let extra = Extra {
        full_text,
        without_key: None,
    };
    match source {
        Source::Branches(branches) if branches.len() == 1 => {
            // One alternative: count its references straight off the index range. Search rows
            // are unique per (entity, key, value), so a driver with one value on a non-relation
            // key meets each entity once and needs no DISTINCT; relation rows can repeat (two
            // entities may declare the same pair) and several values can meet one entity twice.
            let driver = &branches[0].driver;
            let single_row = !driver.key.starts_with("relations.")
                && driver.values.as_ref().is_some_and(|v| v.len() == 1);
            let what = if single_row {
                "COUNT(*)"
            } else {
                "COUNT(DISTINCT d.entity_ref)"
            };
            branches[0].select(&mut sql, what, extra, &RefRange::default());
        }
        _ => {
            sql.push("SELECT COUNT(*) FROM (");
            source.select_refs(&mut sql, extra, &RefRange::default());
            sql.push(") m");
        }
    }
    let n: i64 = sql.query().fetch_one(&mut *conn).await?.try_get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Which slice of the sorted matches to read.
pub(crate) struct Window {
    /// Start after (or, backwards, before) this item.
    pub(crate) boundary: Option<SortKey>,
    /// Read towards the start.
    pub(crate) backwards: bool,
    /// Matches to skip first.
    pub(crate) offset: u64,
    /// At most this many rows.
    pub(crate) limit: Option<u64>,
}

/// Reading one `by-query` page: its rows (one extra asked for, to tell whether more follow),
/// in page order, and its entities.
struct PageRead<'a> {
    dialect: Dialect,
    source: &'a Source,
    full_text: Option<&'a FullText>,
    order: &'a [OrderField],
    window: &'a Window,
    limit: u64,
    fields: &'a Fields,
}

impl PageRead<'_> {
    /// The page's rows, whether more follow, and its entities.
    async fn run(
        &self,
        conn: &mut AnyConnection,
        total: Option<u64>,
    ) -> Result<(Vec<PageRow>, bool, Vec<Value>), CatalogError> {
        if self.limit == 0 {
            return Ok((Vec::new(), false, Vec::new()));
        }
        let rows = fetch_page(
            conn,
            self.dialect,
            self.source,
            self.full_text,
            self.order,
            self.window,
            total,
        )
        .await?;
        let (rows, more) = cut_page(rows, self.limit, self.window.backwards);
        let refs: Vec<String> = rows.iter().map(|r| r.entity_ref.clone()).collect();
        let items = materialize(conn, &refs, self.fields).await?;
        Ok((rows, more, items))
    }
}

/// A page read with one extra row: the page in display order, and whether more follow.
fn cut_page(mut rows: Vec<PageRow>, limit: u64, backwards: bool) -> (Vec<PageRow>, bool) {
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    if backwards {
        rows.reverse();
    }
    (rows, more)
}

/// One item of a page: its reference and its place in the sort.
pub(crate) struct PageRow {
    pub(crate) entity_ref: String,
    key: SortKey,
}

impl PageRow {
    pub(crate) fn new(entity_ref: String, values: Vec<Option<String>>) -> Self {
        Self {
            key: SortKey {
                values,
                entity_ref: entity_ref.clone(),
            },
            entity_ref,
        }
    }
}

/// `"ASC"` or `"DESC"`.
fn direction(ascending: bool) -> &'static str {
    if ascending { "ASC" } else { "DESC" }
}

/// The references of one page, in reading order (reversed when reading backwards). `total`
/// (the number of matches, when known) lets a single sort key be read along its own index.
async fn fetch_page(
    conn: &mut AnyConnection,
    dialect: Dialect,
    source: &Source,
    full_text: Option<&FullText>,
    order: &[OrderField],
    window: &Window,
    total: Option<u64>,
) -> Result<Vec<PageRow>, CatalogError> {
    let extra = Extra {
        full_text,
        without_key: None,
    };
    if order.is_empty() {
        // Sorted by reference: the cursor is a bound on the reference, which the index range
        // of the driving condition takes directly.
        let range = match &window.boundary {
            Some(b) if window.backwards => RefRange::before(&b.entity_ref),
            Some(b) => RefRange::after(&b.entity_ref),
            None => RefRange::default(),
        };
        let refs = fetch_by_ref(
            conn,
            dialect,
            source,
            extra,
            &range,
            !window.backwards,
            window.limit,
            window.offset,
        )
        .await?;
        return Ok(refs
            .into_iter()
            .map(|r| PageRow::new(r, Vec::new()))
            .collect());
    }
    if let ([field], Some(limit), Some(total), 0) = (order, window.limit, total, window.offset)
        && dialect.sort_along_index()
    {
        let boundary = window.boundary.as_ref();
        if let Some(rows) = fetch_along_sort_index(
            conn,
            dialect,
            source,
            full_text,
            field,
            boundary,
            window.backwards,
            limit,
            total,
        )
        .await?
        {
            return Ok(rows);
        }
    }
    fetch_sorted(conn, dialect, source, extra, order, window).await
}

/// References sorted by themselves, `limit` of them from the start of `range` (its end when
/// descending), after skipping `offset`.
#[allow(clippy::too_many_arguments)]
async fn fetch_by_ref(
    conn: &mut AnyConnection,
    dialect: Dialect,
    source: &Source,
    extra: Extra<'_>,
    range: &RefRange,
    ascending: bool,
    limit: Option<u64>,
    offset: u64,
) -> Result<Vec<String>, CatalogError> {
    let mut sql = Sql::new(dialect);
    let collate = dialect.collate();
    let dir = direction(ascending);
    if source.may_repeat() {
        source.select_refs(&mut sql, extra, range);
        sql.push(&format!(
            " GROUP BY d.entity_ref ORDER BY d.entity_ref{collate} {dir}"
        ));
    } else {
        sql.push("SELECT m.entity_ref FROM (");
        source.select_refs(&mut sql, extra, range);
        sql.push(&format!(") m ORDER BY m.entity_ref{collate} {dir}"));
    }
    push_limit(&mut sql, limit, offset);
    let mut out = Vec::new();
    for row in sql.query().fetch_all(&mut *conn).await? {
        out.push(row.try_get(0)?);
    }
    Ok(out)
}

fn push_limit(sql: &mut Sql, limit: Option<u64>, offset: u64) {
    if let Some(limit) = limit {
        let limit = sql.int(limit);
        sql.push(&format!(" LIMIT {limit}"));
    } else if offset > 0 {
        let limit = sql.int(i64::MAX as u64);
        sql.push(&format!(" LIMIT {limit}"));
    }
    if offset > 0 {
        let offset = sql.int(offset);
        sql.push(&format!(" OFFSET {offset}"));
    }
}

/// The general plan for sort keys: every match with its sort values (the smallest value of each
/// key, missing last), sorted, the page cut out after the boundary. Costs a lookup per match.
async fn fetch_sorted(
    conn: &mut AnyConnection,
    dialect: Dialect,
    source: &Source,
    extra: Extra<'_>,
    order: &[OrderField],
    window: &Window,
) -> Result<Vec<PageRow>, CatalogError> {
    let mut sql = Sql::new(dialect);
    let collate = dialect.collate();
    // Reading direction of a part of the sort: its own, reversed when reading backwards. The
    // reference breaks ties in the direction of the first key, as in Backstage.
    let dir = |o: SortOrder| direction((o == SortOrder::Asc) != window.backwards);
    let tie = dir(order.first().map_or(SortOrder::Asc, |o| o.order));
    sql.push("SELECT x.entity_ref");
    for i in 0..order.len() {
        sql.push(&format!(", x.n{i}, x.v{i}"));
    }
    sql.push(" FROM (SELECT m.entity_ref AS entity_ref");
    for i in 0..order.len() {
        sql.push(&format!(
            ", CASE WHEN MIN(o{i}.value{collate}) IS NULL THEN 1 ELSE 0 END AS n{i}, COALESCE(MIN(o{i}.value{collate}), '') AS v{i}"
        ));
    }
    sql.push(" FROM (");
    source.select_refs(&mut sql, extra, &RefRange::default());
    sql.push(") m");
    let hint = dialect.by_entity_hint();
    for (i, field) in order.iter().enumerate() {
        let key = sql.text(&field.field);
        sql.push(&format!(" LEFT JOIN catalog_search o{i}{hint} ON o{i}.entity_ref = m.entity_ref AND o{i}.key = {key}"));
    }
    sql.push(" GROUP BY m.entity_ref) x");
    if let Some(boundary) = &window.boundary {
        // The tuple (n0, v0, n1, v1, …, ref) after the boundary's, each part in its direction.
        let mut parts: Vec<(String, &'static str, Arg)> = Vec::new();
        for (i, field) in order.iter().enumerate() {
            let value = boundary.values.get(i).cloned().flatten();
            parts.push((
                format!("x.n{i}"),
                dir(SortOrder::Asc),
                Arg::Int(i64::from(value.is_none())),
            ));
            parts.push((
                format!("x.v{i}{collate}"),
                dir(field.order),
                Arg::Text(value.unwrap_or_default()),
            ));
        }
        parts.push((
            format!("x.entity_ref{collate}"),
            tie,
            Arg::Text(boundary.entity_ref.clone()),
        ));
        let mut alternatives = Vec::new();
        for i in 0..parts.len() {
            let mut terms = Vec::new();
            for (j, (column, direction, value)) in parts.iter().enumerate().take(i + 1) {
                let arg = match value {
                    Arg::Text(s) => sql.text(s),
                    Arg::Int(n) => sql.int(u64::try_from(*n).unwrap_or(0)),
                };
                let op = if j < i {
                    "="
                } else if *direction == "ASC" {
                    ">"
                } else {
                    "<"
                };
                terms.push(format!("{column} {op} {arg}"));
            }
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        sql.push(&format!(" WHERE {}", alternatives.join(" OR ")));
    }
    let mut sorts = Vec::new();
    for (i, field) in order.iter().enumerate() {
        sorts.push(format!("x.n{i} {}", dir(SortOrder::Asc)));
        sorts.push(format!("x.v{i}{collate} {}", dir(field.order)));
    }
    sorts.push(format!("x.entity_ref{collate} {tie}"));
    sql.push(&format!(" ORDER BY {}", sorts.join(", ")));
    push_limit(&mut sql, window.limit, window.offset);
    let mut out = Vec::new();
    for row in sql.query().fetch_all(&mut *conn).await? {
        let entity_ref: String = row.try_get(0)?;
        let mut values = Vec::with_capacity(order.len());
        for i in 0..order.len() {
            let missing: i64 = row.try_get(1 + 2 * i)?;
            let value: String = row.try_get(2 + 2 * i)?;
            values.push((missing == 0).then_some(value));
        }
        out.push(PageRow::new(entity_ref, values));
    }
    Ok(out)
}

/// One sort key, read along its own `(key, value, entity_ref)` index: rows come in sort order
/// and the filter is checked per row, so a page costs about `limit / share of matches` rows
/// instead of a lookup per match. Entities without a value follow, by reference. `None` when
/// the matches look too sparse for this (estimated from `total`), or turn out to be (more than
/// [`SORT_SCAN_BUDGET`] rows scanned for one page): the general plan takes over.
#[allow(clippy::too_many_arguments)]
async fn fetch_along_sort_index(
    conn: &mut AnyConnection,
    dialect: Dialect,
    source: &Source,
    full_text: Option<&FullText>,
    field: &OrderField,
    boundary: Option<&SortKey>,
    backwards: bool,
    want: u64,
    total: u64,
) -> Result<Option<Vec<PageRow>>, CatalogError> {
    if total == 0 {
        return Ok(None);
    }
    let entities: i64 = sqlx::query("SELECT COALESCE(MAX(rowid), 0) FROM catalog_entities")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    if want.saturating_mul(u64::try_from(entities).unwrap_or(0)) / total > SORT_SCAN_BUDGET {
        return Ok(None);
    }
    // The order is: entities with a value (by value, then reference, both in the key's
    // direction), then those without (by reference). Reading backwards walks it in reverse.
    let in_values = |b: &SortKey| b.values.first().is_some_and(Option::is_some);
    let phases: Vec<(bool, Option<&SortKey>)> = match (backwards, boundary) {
        (false, None) => vec![(true, None), (false, None)],
        (false, Some(b)) if in_values(b) => vec![(true, Some(b)), (false, None)],
        (false, Some(b)) => vec![(false, Some(b))],
        (true, Some(b)) if in_values(b) => vec![(true, Some(b))],
        (true, b) => vec![(false, b), (true, None)],
    };
    let ascending = (field.order == SortOrder::Asc) != backwards;
    let mut out: Vec<PageRow> = Vec::new();
    for (with_value, from) in phases {
        let remaining = want.saturating_sub(out.len() as u64);
        if remaining == 0 {
            break;
        }
        if with_value {
            let from = from.map(|b| {
                (
                    b.values[0].clone().unwrap_or_default(),
                    b.entity_ref.clone(),
                )
            });
            match rows_with_value(
                conn,
                dialect,
                source,
                full_text,
                &field.field,
                from,
                ascending,
                remaining,
            )
            .await?
            {
                Some(rows) => out.extend(rows),
                None => return Ok(None),
            }
        } else {
            let range = match from {
                Some(b) if ascending => RefRange::after(&b.entity_ref),
                Some(b) => RefRange::before(&b.entity_ref),
                None => RefRange::default(),
            };
            let extra = Extra {
                full_text,
                without_key: Some(&field.field),
            };
            let refs = fetch_by_ref(
                conn,
                dialect,
                source,
                extra,
                &range,
                ascending,
                Some(remaining),
                0,
            )
            .await?;
            out.extend(refs.into_iter().map(|r| PageRow::new(r, vec![None])));
        }
    }
    Ok(Some(out))
}

/// Matching entities that have a value for `key`, in value order from `from` (exclusive), each
/// at its smallest value; `None` when [`SORT_SCAN_BUDGET`] rows were read without filling the page.
#[allow(clippy::too_many_arguments)]
async fn rows_with_value(
    conn: &mut AnyConnection,
    dialect: Dialect,
    source: &Source,
    full_text: Option<&FullText>,
    key: &str,
    mut from: Option<(String, String)>,
    ascending: bool,
    want: u64,
) -> Result<Option<Vec<PageRow>>, CatalogError> {
    let mut out: Vec<PageRow> = Vec::new();
    loop {
        let need = want - out.len() as u64;
        let mut sql = Sql::new(dialect);
        let (inner, key_arg) = scan_sort_key(&mut sql, key, from.as_ref(), ascending);
        let c = dialect.collate();
        let dir = direction(ascending);
        let hint = dialect.by_entity_hint();
        let predicate = source.predicate(
            &mut sql,
            "s.entity_ref",
            Extra {
                full_text,
                without_key: None,
            },
        );
        let exists = if key.starts_with("relations.") {
            " AND EXISTS (SELECT 1 FROM catalog_entities e WHERE e.entity_ref = s.entity_ref)"
        } else {
            ""
        };
        let limit = sql.int(need);
        sql.push(&format!(
            "SELECT s.entity_ref, s.value FROM ({inner}) s WHERE NOT EXISTS (SELECT 1 FROM catalog_search o{hint} \
             WHERE o.entity_ref = s.entity_ref AND o.key = {key_arg} AND o.value{c} < s.value{c}) AND {predicate}{exists} \
             ORDER BY s.value{c} {dir}, s.entity_ref{c} {dir} LIMIT {limit}"
        ));
        let rows = sql.query().fetch_all(&mut *conn).await?;
        let fetched = rows.len() as u64;
        for row in &rows {
            let entity_ref: String = row.try_get(0)?;
            let value: String = row.try_get(1)?;
            // The same row twice (an array repeating a value) is the same item.
            if out.last().is_none_or(|last| last.entity_ref != entity_ref) {
                from = Some((value.clone(), entity_ref.clone()));
                out.push(PageRow::new(entity_ref, vec![Some(value)]));
            }
        }
        if out.len() as u64 >= want {
            return Ok(Some(out));
        }
        if fetched == need {
            // Repeated rows shortened the page; carry on after them.
            continue;
        }
        // Fewer rows than asked: either the key's rows ran out, or the budget did.
        let mut sql = Sql::new(dialect);
        let (inner, _) = scan_sort_key(&mut sql, key, from.as_ref(), ascending);
        sql.push(&format!("SELECT COUNT(*) FROM ({inner}) q"));
        let scanned: i64 = sql.query().fetch_one(&mut *conn).await?.try_get(0)?;
        return Ok((u64::try_from(scanned).unwrap_or(0) < SORT_SCAN_BUDGET).then_some(out));
    }
}

/// `SELECT k.entity_ref, k.value …`: the rows of a sort key with a value, from `from`
/// (exclusive) on, in index order, at most [`SORT_SCAN_BUDGET`] of them. Also returns the
/// placeholder of the key.
fn scan_sort_key(
    sql: &mut Sql,
    key: &str,
    from: Option<&(String, String)>,
    ascending: bool,
) -> (String, String) {
    let c = sql.dialect.collate();
    let (dir, after, at_or_after) = if ascending {
        ("ASC", ">", ">=")
    } else {
        ("DESC", "<", "<=")
    };
    let key = sql.text(key);
    let mut text =
        format!("SELECT k.entity_ref, k.value FROM catalog_search k WHERE k.key = {key}");
    match from {
        Some((value, entity_ref)) => {
            let value = sql.text(value);
            let entity_ref = sql.text(entity_ref);
            // Ascending, the boundary is the lower bound of the index range (a second one
            // would make SQLite seek from the other); descending, `>= ''` still leaves NULLs out.
            if !ascending {
                text.push_str(&format!(" AND k.value{c} >= ''"));
            }
            text.push_str(&format!(
                " AND k.value{c} {at_or_after} {value} AND (k.value{c} {after} {value} OR k.entity_ref{c} {after} {entity_ref})"
            ));
        }
        None => text.push_str(&format!(" AND k.value{c} >= ''")),
    }
    let budget = sql.int(SORT_SCAN_BUDGET);
    text.push_str(&format!(
        " ORDER BY k.value{c} {dir}, k.entity_ref{c} {dir} LIMIT {budget}"
    ));
    (text, key)
}

/// The entities of `refs`, in that order, projected.
async fn materialize(
    conn: &mut AnyConnection,
    refs: &[String],
    fields: &Fields,
) -> Result<Vec<Value>, CatalogError> {
    let mut found: HashMap<String, Value> = load_entities(conn, refs).await?;
    Ok(refs
        .iter()
        .filter_map(|r| found.remove(r))
        .map(|e| fields.apply(e))
        .collect())
}

/// Base64 for cursors: URL-safe without padding when writing; either alphabet, padded or not,
/// when reading.
mod base64url {
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        encode_with(bytes, URL, false)
    }

    /// Standard alphabet with padding, as Node's `Buffer.toString('base64')` writes it.
    pub fn encode_standard(bytes: &[u8]) -> String {
        encode_with(bytes, STANDARD, true)
    }

    fn encode_with(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = (u32::from(chunk[0]) << 16)
                | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
                | u32::from(chunk.get(2).copied().unwrap_or(0));
            for i in 0..=chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            }
            if pad {
                for _ in chunk.len()..3 {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.trim_end_matches('=');
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in text.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                // `+` may arrive as a space when a query string was form-decoded.
                b'-' | b'+' | b' ' => 62,
                b'_' | b'/' => 63,
                _ => return None,
            };
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        if bits >= 6 {
            return None;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::CatalogOptions;
    use serde_json::json;

    /// 12 entities `a00…` and 20 `z00…` (tagged `zz`, some titled, one with repeated tags),
    /// so a filter on `zz` sorted by name has its matches bunched at the end.
    async fn bunched(catalog: &Catalog) {
        for i in 0..32 {
            let name = if i < 12 {
                format!("a{i:02}")
            } else {
                format!("z{:02}", i - 12)
            };
            let mut metadata = json!({"name": name});
            if i >= 12 {
                metadata["tags"] = if i == 20 {
                    json!(["zz", "b", "b", "a"])
                } else {
                    json!(["zz", format!("t{}", i % 5)])
                };
            }
            if i % 3 == 0 {
                metadata["title"] = json!(["Gamma", "alpha", "Beta"][i % 9 / 3]);
            }
            let entity = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": metadata,
                "spec": {"type": "service", "lifecycle": "production", "owner": "team"}});
            catalog.create_managed(entity).await.unwrap();
        }
    }

    /// The expected order: smallest lowercased value of `key` (missing last), then reference,
    /// both in `order`'s direction.
    fn expected(entities: &[Value], key: &str, order: SortOrder) -> Vec<String> {
        let mut keyed: Vec<(Option<String>, String)> = entities
            .iter()
            .map(|e| {
                let r = format!(
                    "component:default/{}",
                    e["metadata"]["name"].as_str().unwrap()
                );
                let value = match key {
                    "metadata.tags" => e["metadata"]["tags"].as_array().and_then(|t| {
                        t.iter()
                            .filter_map(|v| v.as_str())
                            .min()
                            .map(str::to_string)
                    }),
                    _ => e["metadata"][key.trim_start_matches("metadata.")]
                        .as_str()
                        .map(str::to_lowercase),
                };
                (value, r)
            })
            .collect();
        keyed.sort_by(|(va, ra), (vb, rb)| {
            let by_value = match (va, vb) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            let by_value = if order == SortOrder::Desc && va.is_some() && vb.is_some() {
                by_value.reverse()
            } else {
                by_value
            };
            let by_ref = if order == SortOrder::Desc {
                rb.cmp(ra)
            } else {
                ra.cmp(rb)
            };
            by_value.then(by_ref)
        });
        keyed.into_iter().map(|(_, r)| r).collect()
    }

    fn refs(page: &QueryPage) -> Vec<String> {
        page.items
            .iter()
            .map(|e| {
                format!(
                    "component:default/{}",
                    e["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn sorting_along_the_index_agrees_with_the_general_plan() {
        for (store, db) in portico_store::testing::stores().await {
            let catalog = Catalog::new(store, CatalogOptions::default());
            bunched(&catalog).await;
            for filter in [
                "",
                "metadata.tags=zz",
                "kind=component",
                "metadata.tags=zz,metadata.name=z05",
            ] {
                let filter_param = EntityFilter::parse(&[filter]).unwrap();
                let all = catalog
                    .entities(&EntitiesRequest {
                        filter: filter_param.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                for key in ["metadata.name", "metadata.title", "metadata.tags"] {
                    for order in [SortOrder::Asc, SortOrder::Desc] {
                        let want = expected(&all, key, order);
                        let req = QueryRequest {
                            filter: filter_param.clone(),
                            order_fields: vec![OrderField::new(key, order)],
                            limit: Some(2),
                            ..Default::default()
                        };
                        let mut pages = vec![catalog.query_entities(&req).await.unwrap()];
                        while let Some(next) = pages.last().unwrap().page_info.next_cursor.clone() {
                            let next = QueryRequest {
                                cursor: Some(next),
                                limit: Some(2),
                                ..Default::default()
                            };
                            pages.push(catalog.query_entities(&next).await.unwrap());
                        }
                        let seen: Vec<String> = pages.iter().flat_map(refs).collect();
                        let case =
                            format!("{:?} filter {filter:?} by {key} {order:?}", db.backend());
                        assert_eq!(seen, want, "{case}");
                        for i in 1..pages.len() {
                            let back = QueryRequest {
                                cursor: pages[i].page_info.prev_cursor.clone(),
                                limit: Some(2),
                                ..Default::default()
                            };
                            let back = catalog.query_entities(&back).await.unwrap();
                            assert_eq!(
                                refs(&back),
                                refs(&pages[i - 1]),
                                "{case}, back from page {i}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn base64_round_trips() {
        for text in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "{\"limit\":2,\"offset\":4}",
            "ünïcödé ✓",
        ] {
            let url = base64url::encode(text.as_bytes());
            assert!(!url.contains(['=', '+', '/']));
            assert_eq!(base64url::decode(&url).unwrap(), text.as_bytes());
            let standard = base64url::encode_standard(text.as_bytes());
            assert_eq!(base64url::decode(&standard).unwrap(), text.as_bytes());
        }
        assert_eq!(base64url::encode_standard(b"ab"), "YWI=");
        assert!(base64url::decode("a").is_none());
        assert!(base64url::decode("a*b").is_none());
    }

    #[test]
    fn ref_ranges_intersect() {
        let api = RefRange::kind("api");
        let r = api.and(&RefRange::after("api:default/b"));
        assert_eq!(r.lo, Some(("api:default/b".into(), false)));
        assert_eq!(r.hi, Some(("api;".into(), false)));
        assert!(!r.is_empty_range());
        assert!(
            api.and(&RefRange::after("component:default/a"))
                .is_empty_range()
        );
        assert!(api.and(&RefRange::before("api:")).is_empty_range());
        let r = api.and(&RefRange::before("zzz"));
        assert_eq!(r, api);
    }

    #[test]
    fn parses_order_fields() {
        assert_eq!(
            OrderField::parse_query("metadata.Name").unwrap(),
            OrderField::new("metadata.name", SortOrder::Asc)
        );
        assert_eq!(
            OrderField::parse_query("spec.type, desc").unwrap().order,
            SortOrder::Desc
        );
        assert!(OrderField::parse_query("spec.type,up").is_err());
        assert!(OrderField::parse_query(",asc").is_err());
        assert_eq!(
            OrderField::parse_legacy("desc:metadata.name").unwrap(),
            OrderField::new("metadata.name", SortOrder::Desc)
        );
        assert!(OrderField::parse_legacy("metadata.name").is_err());
    }

    #[test]
    fn full_text_pattern_escapes() {
        let ft = FullText {
            term: "50%_a\\b".into(),
            keys: vec![],
        };
        assert_eq!(ft.pattern(), "%50\\%\\_a\\\\b%");
    }
}
