//! The catalog held in memory for queries: every entity as the API shows it, and its search rows
//! as an inverted index (key → value → entities), so a filter is a few set operations, a count
//! is a popcount and a sorted page is a short walk along a sort column built once per key.
//!
//! A copy is current while the database's catalog generation (moved on by every entity write, in
//! the same transaction) equals the one it was loaded at; a query checks that with one read (on
//! SQLite only when this process committed a write since the last check).
//! A stale copy is rebuilt in the background, once writes pause, while the SQL engine answers, so
//! nothing is ever served from an outdated copy, and ingestion bursts cost one rebuild per quiet
//! moment rather than one per query. Semantics are those of the SQL engine in [`super::query`]:
//! values compare by bytes, an entity sorts at its smallest value of a key, entities without one
//! come last in both directions, the reference breaks ties in the direction of the first key.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use portico_store::sqlx::{self, AnyConnection, Row};
use portico_store::{Backend, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CatalogError;
use super::filter::{EntityFilter, Fields, FilterCondition};
use super::persist::{load_all_entities, read_generation};
use super::query::{FullText, OrderField, PageRow, SortOrder, Window};

/// Where the catalog's queries are answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryIndex {
    /// From an in-memory copy while it is current; from the database while it is rebuilt.
    #[default]
    Memory,
    /// Always from the database (very large catalogs, or to save the memory).
    Database,
    /// From memory, waiting for a rebuild when the copy is stale: lets tests pin the engine.
    #[serde(skip)]
    MemoryOnly,
}

/// The in-memory copy and the rules for keeping it current; shared by every clone of a catalog.
#[derive(Default)]
pub(crate) struct MemoryIndex {
    current: RwLock<Option<Arc<Snapshot>>>,
    rebuilding: tokio::sync::Mutex<()>,
    /// A background rebuild is waiting or running.
    scheduled: AtomicBool,
}

/// A background rebuild waits until the catalog has not changed for this long…
const QUIET: Duration = Duration::from_millis(250);
/// …but no longer than this, so a catalog that never stops changing is still served from
/// memory between rebuilds.
const MOST_WAIT: Duration = Duration::from_secs(10);

impl MemoryIndex {
    /// The copy to answer from, when it is current; `None` means ask the database. A stale copy
    /// starts a rebuild (in the background, or awaited in [`QueryIndex::MemoryOnly`]).
    pub(crate) async fn current(
        self: &Arc<Self>,
        store: &Store,
        mode: QueryIndex,
    ) -> Result<Option<Arc<Snapshot>>, CatalogError> {
        if mode == QueryIndex::Database {
            return Ok(None);
        }
        // On SQLite one process owns the database and every write it makes goes through the
        // store's write transactions: when none committed since the copy was last found current,
        // it still is. (Pinned to memory for tests, the database is always asked, so rows written
        // around the store are noticed too.)
        let trust_local = mode == QueryIndex::Memory && store.backend() == Backend::Sqlite;
        let commits = store.local_commits();
        let snapshot = self.snapshot();
        if let Some(snapshot) = &snapshot
            && trust_local
            && snapshot.verified_at.load(AtomicOrdering::Acquire) == commits
        {
            return Ok(Some(Arc::clone(snapshot)));
        }
        let generation = read_generation(&mut *store.pool().acquire().await?).await?;
        if let Some(snapshot) = snapshot.filter(|s| s.generation == generation) {
            snapshot.verified_at.store(commits, AtomicOrdering::Release);
            return Ok(Some(snapshot));
        }
        if mode == QueryIndex::MemoryOnly {
            return self.rebuild(store).await.map(Some);
        }
        if !self.scheduled.swap(true, AtomicOrdering::AcqRel) {
            let (index, store) = (Arc::clone(self), store.clone());
            tokio::spawn(async move {
                if let Err(error) = index.rebuild_when_quiet(&store, generation).await {
                    tracing::warn!(%error, "the in-memory catalog index could not be rebuilt");
                }
                index.scheduled.store(false, AtomicOrdering::Release);
            });
        }
        Ok(None)
    }

    /// Rebuilds once writes pause: a refresh writing thousands of entities costs one rebuild at
    /// its end rather than one per query that came in meanwhile.
    async fn rebuild_when_quiet(&self, store: &Store, mut seen: i64) -> Result<(), CatalogError> {
        let started = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(QUIET).await;
            let now = read_generation(&mut *store.pool().acquire().await?).await?;
            if now == seen || started.elapsed() >= MOST_WAIT {
                break;
            }
            seen = now;
        }
        self.rebuild(store).await.map(|_| ())
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.read().ok().and_then(|s| s.clone())
    }

    /// Loads a new copy unless another rebuild, finished while this one waited, left a current one.
    pub(crate) async fn rebuild(&self, store: &Store) -> Result<Arc<Snapshot>, CatalogError> {
        let _only = self.rebuilding.lock().await;
        let mut conn = store.pool().acquire().await?;
        // Read first: a write committed while loading leaves the copy marked older, so the next
        // query rebuilds it again rather than trusting it.
        let commits = store.local_commits();
        let generation = read_generation(&mut conn).await?;
        if let Some(snapshot) = self.snapshot().filter(|s| s.generation == generation) {
            return Ok(snapshot);
        }
        let started = std::time::Instant::now();
        let snapshot = Arc::new(Snapshot::load(&mut conn, generation, commits).await?);
        tracing::debug!(
            entities = snapshot.refs.len(),
            ms = started.elapsed().as_millis() as u64,
            "in-memory catalog index rebuilt"
        );
        if let Ok(mut current) = self.current.write() {
            *current = Some(Arc::clone(&snapshot));
        }
        Ok(snapshot)
    }
}

/// The entities that match, one bit per entity (in reference order).
#[derive(Clone)]
pub(crate) struct Matches {
    bits: Vec<u64>,
}

/// Whether `ids` among `n` entities are better kept as a bitset too: when they are more than
/// an eighth of the entities, so the bitset costs at most a quarter of the ids' own memory.
fn is_dense(ids: &[u32], n: usize) -> bool {
    ids.len() > 8 * n.div_ceil(64)
}

impl Matches {
    fn none(n: usize) -> Self {
        Self {
            bits: vec![0; n.div_ceil(64)],
        }
    }

    fn all(n: usize) -> Self {
        let mut m = Self {
            bits: vec![u64::MAX; n.div_ceil(64)],
        };
        if !n.is_multiple_of(64)
            && let Some(last) = m.bits.last_mut()
        {
            *last = (1u64 << (n % 64)) - 1;
        }
        m
    }

    fn of(n: usize, ids: &[u32]) -> Self {
        let mut m = Self::none(n);
        m.add(ids);
        m
    }

    fn add(&mut self, ids: &[u32]) {
        for &id in ids {
            self.bits[id as usize / 64] |= 1 << (id % 64);
        }
    }

    fn and(&mut self, other: &Matches) {
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a &= b;
        }
    }

    fn or(&mut self, other: &Matches) {
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
    }

    fn has(&self, id: u32) -> bool {
        self.bits[id as usize / 64] & (1 << (id % 64)) != 0
    }

    /// How many entities match.
    pub(crate) fn count(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// Everything about one search key.
#[derive(Default)]
struct KeyIndex {
    /// Entities with a row of this key (with or without a value), ascending.
    any: Vec<u32>,
    /// Per value, the entities with it, ascending.
    values: HashMap<String, Vec<u32>>,
    /// The same as bitsets for values common enough that copying the bitset is cheaper than
    /// setting each bit (`kind = component` in most catalogs); `any` likewise.
    dense: HashMap<String, Matches>,
    dense_any: Option<Matches>,
    /// Built on the first sort by this key.
    column: OnceLock<SortColumn>,
}

/// Entities with a value of one key, by (smallest value, reference), and each one's place.
struct SortColumn {
    order: Vec<(u32, Arc<str>)>,
    /// Per entity, its position in `order`; `u32::MAX` when it has no value.
    position: Vec<u32>,
}

impl SortColumn {
    fn build(key: &KeyIndex, n: usize) -> Self {
        let mut values: Vec<(&String, &Vec<u32>)> = key.values.iter().collect();
        values.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut position = vec![u32::MAX; n];
        let mut order = Vec::new();
        for (value, ids) in values {
            let value: Arc<str> = Arc::from(value.as_str());
            let start = order.len();
            for &id in ids {
                // Values come smallest first, so an entity seen before sits at its smallest.
                if position[id as usize] == u32::MAX {
                    position[id as usize] = 0;
                    order.push((id, Arc::clone(&value)));
                }
            }
            order[start..].sort_unstable_by_key(|(id, _)| *id);
        }
        for (i, (id, _)) in order.iter().enumerate() {
            position[*id as usize] = u32::try_from(i).unwrap_or(u32::MAX);
        }
        Self { order, position }
    }

    fn value_of(&self, id: u32) -> Option<&str> {
        let at = *self.position.get(id as usize)?;
        self.order.get(at as usize).map(|(_, v)| &**v)
    }
}

/// The catalog at one generation.
pub(crate) struct Snapshot {
    generation: i64,
    /// The store's local commit count when the generation was last found unchanged.
    verified_at: AtomicU64,
    /// Entity references in byte order; an entity's id is its index here.
    refs: Vec<String>,
    entities: Vec<Value>,
    keys: HashMap<String, KeyIndex>,
}

impl Snapshot {
    async fn load(
        conn: &mut AnyConnection,
        generation: i64,
        commits: u64,
    ) -> Result<Self, CatalogError> {
        let mut by_ref = load_all_entities(conn).await?;
        let mut refs: Vec<String> = by_ref.keys().cloned().collect();
        refs.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let ids: HashMap<&str, u32> = refs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.as_str(), u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        let mut keys: HashMap<String, KeyIndex> = HashMap::new();
        let rows = sqlx::query("SELECT entity_ref, key, value FROM catalog_search")
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let entity_ref: String = row.try_get(0)?;
            // Rows of references that are not entities (the far side of a relation to nothing)
            // never match: the SQL engine only returns stored entities too.
            let Some(&id) = ids.get(entity_ref.as_str()) else {
                continue;
            };
            let key: String = row.try_get(1)?;
            let value: Option<String> = row.try_get(2)?;
            let index = keys.entry(key).or_default();
            index.any.push(id);
            if let Some(value) = value {
                index.values.entry(value).or_default().push(id);
            }
        }
        let n = refs.len();
        for index in keys.values_mut() {
            index.any.sort_unstable();
            index.any.dedup();
            for ids in index.values.values_mut() {
                ids.sort_unstable();
                ids.dedup();
            }
            index.dense = (index.values.iter())
                .filter(|(_, ids)| is_dense(ids, n))
                .map(|(value, ids)| (value.clone(), Matches::of(n, ids)))
                .collect();
            index.dense_any = is_dense(&index.any, n).then(|| Matches::of(n, &index.any));
        }
        let entities = refs
            .iter()
            .map(|r| by_ref.remove(r).unwrap_or(Value::Null))
            .collect();
        Ok(Self {
            generation,
            verified_at: AtomicU64::new(commits),
            refs,
            entities,
            keys,
        })
    }

    fn len(&self) -> usize {
        self.refs.len()
    }

    fn id(&self, i: usize) -> u32 {
        u32::try_from(i).unwrap_or(u32::MAX)
    }

    /// The entities a filter and a full-text filter match.
    pub(crate) fn matches(&self, filter: &EntityFilter, full_text: Option<&FullText>) -> Matches {
        let n = self.len();
        let mut out = if filter.is_empty() {
            Matches::all(n)
        } else {
            let mut any = Matches::none(n);
            for conditions in filter.alternatives() {
                let mut all = Matches::all(n);
                for condition in conditions {
                    all.and(&self.condition(condition));
                }
                any.or(&all);
            }
            any
        };
        if let Some(full_text) = full_text {
            let mut found = Matches::none(n);
            for index in full_text.keys.iter().filter_map(|k| self.keys.get(k)) {
                for (value, ids) in &index.values {
                    if value.contains(full_text.term.as_str()) {
                        found.add(ids);
                    }
                }
            }
            out.and(&found);
        }
        out
    }

    fn condition(&self, condition: &FilterCondition) -> Matches {
        let n = self.len();
        let Some(index) = self.keys.get(&condition.key) else {
            return Matches::none(n);
        };
        match &condition.values {
            None => (index.dense_any.clone()).unwrap_or_else(|| Matches::of(n, &index.any)),
            Some(values) => {
                let mut m = Matches::none(n);
                for value in values {
                    if let Some(bits) = index.dense.get(value) {
                        m.or(bits);
                    } else if let Some(ids) = index.values.get(value) {
                        m.add(ids);
                    }
                }
                m
            }
        }
    }

    fn column(&self, key: &str) -> Option<&SortColumn> {
        let index = self.keys.get(key)?;
        Some(
            index
                .column
                .get_or_init(|| SortColumn::build(index, self.len())),
        )
    }

    /// One window of the matches in the order asked for, in reading order.
    pub(crate) fn page(
        &self,
        matches: &Matches,
        order: &[OrderField],
        window: &Window,
    ) -> Vec<PageRow> {
        let mut reader = Reader::new(matches, window);
        match order {
            [] => {
                let range = match &window.boundary {
                    None => 0..self.len(),
                    Some(b) if window.backwards => 0..self.ref_position(&b.entity_ref, false),
                    Some(b) => self.ref_position(&b.entity_ref, true)..self.len(),
                };
                reader.read(range.map(|i| self.id(i)), window.backwards, |_| Vec::new());
            }
            [field] => self.page_by_one_key(&mut reader, field, window),
            _ => self.page_by_many_keys(&mut reader, order, window),
        }
        reader
            .rows
            .into_iter()
            .map(|(id, values)| PageRow::new(self.refs[id as usize].clone(), values))
            .collect()
    }

    /// Where `entity_ref` would sit among the references: after it (`after`) or before it.
    fn ref_position(&self, entity_ref: &str, after: bool) -> usize {
        self.refs
            .partition_point(|r| match r.as_bytes().cmp(entity_ref.as_bytes()) {
                Ordering::Less => true,
                Ordering::Equal => after,
                Ordering::Greater => false,
            })
    }

    /// A single sort key: the entities with a value along the key's column, then those without
    /// by reference, each part in the key's direction; reading backwards walks it in reverse.
    fn page_by_one_key(&self, reader: &mut Reader<'_>, field: &OrderField, window: &Window) {
        let column = self.column(&field.field);
        let with_value = column.map_or(&[][..], |c| &c.order[..]);
        let ascending = field.order == SortOrder::Asc;
        let no_value = |i: usize| column.is_none_or(|c| c.position[i] == u32::MAX);
        let up = ascending != window.backwards;
        // Ranges of `with_value` and of the references (ascending), cut at the boundary.
        let (mut valued, mut missing) = (0..with_value.len(), 0..self.len());
        match &window.boundary {
            None => {}
            Some(b) => match b.values.first().cloned().flatten() {
                Some(value) => {
                    let key = (value.as_bytes(), b.entity_ref.as_bytes());
                    let cut = |after: bool| {
                        with_value.partition_point(|(id, v)| {
                            match (v.as_bytes(), self.refs[*id as usize].as_bytes()).cmp(&key) {
                                Ordering::Less => true,
                                Ordering::Equal => after,
                                Ordering::Greater => false,
                            }
                        })
                    };
                    valued = if up {
                        cut(true)..with_value.len()
                    } else {
                        0..cut(false)
                    };
                    if window.backwards {
                        missing = 0..0;
                    }
                }
                None => {
                    missing = if up {
                        self.ref_position(&b.entity_ref, true)..self.len()
                    } else {
                        0..self.ref_position(&b.entity_ref, false)
                    };
                    if !window.backwards {
                        valued = 0..0;
                    }
                }
            },
        }
        let valued_ids = with_value[valued].iter().map(|(id, _)| *id);
        let missing_ids = missing.filter(|&i| no_value(i)).map(|i| self.id(i));
        let value_of = |id: u32| vec![column.and_then(|c| c.value_of(id)).map(str::to_string)];
        if window.backwards {
            reader.read(missing_ids, !up, |_| vec![None]);
            reader.read(valued_ids, !up, value_of);
        } else {
            reader.read(valued_ids, !up, value_of);
            reader.read(missing_ids, !up, |_| vec![None]);
        }
    }

    /// Several sort keys: every match with its sort values, sorted.
    fn page_by_many_keys(&self, reader: &mut Reader<'_>, order: &[OrderField], window: &Window) {
        let columns: Vec<Option<&SortColumn>> =
            order.iter().map(|f| self.column(&f.field)).collect();
        let values_of = |id: u32| -> Vec<Option<&str>> {
            columns
                .iter()
                .map(|c| c.and_then(|c| c.value_of(id)))
                .collect()
        };
        let tie_ascending = order.first().is_none_or(|f| f.order == SortOrder::Asc);
        let compare = |a: (&[Option<&str>], &str), b: (&[Option<&str>], &str)| {
            for (i, field) in order.iter().enumerate() {
                let by = match (a.0[i], b.0[i]) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Greater,
                    (Some(_), None) => Ordering::Less,
                    (Some(x), Some(y)) => {
                        let o = x.as_bytes().cmp(y.as_bytes());
                        if field.order == SortOrder::Asc {
                            o
                        } else {
                            o.reverse()
                        }
                    }
                };
                if by != Ordering::Equal {
                    return by;
                }
            }
            let o = a.1.as_bytes().cmp(b.1.as_bytes());
            if tie_ascending { o } else { o.reverse() }
        };
        let mut items: Vec<(u32, Vec<Option<&str>>)> = (0..self.len())
            .map(|i| self.id(i))
            .filter(|&id| reader.matches.has(id))
            .map(|id| (id, values_of(id)))
            .collect();
        items.sort_unstable_by(|a, b| {
            compare(
                (&a.1, &self.refs[a.0 as usize]),
                (&b.1, &self.refs[b.0 as usize]),
            )
        });
        let boundary = window.boundary.as_ref().map(|b| {
            let values: Vec<Option<&str>> = (0..order.len())
                .map(|i| b.values.get(i).and_then(|v| v.as_deref()))
                .collect();
            (values, b.entity_ref.as_str())
        });
        let after = |item: &&(u32, Vec<Option<&str>>)| match &boundary {
            None => true,
            Some((values, entity_ref)) => {
                let o = compare((&item.1, &self.refs[item.0 as usize]), (values, entity_ref));
                o == if window.backwards {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
        };
        let in_reading_order: Box<dyn Iterator<Item = &(u32, Vec<Option<&str>>)>> =
            if window.backwards {
                Box::new(items.iter().rev())
            } else {
                Box::new(items.iter())
            };
        for (id, values) in in_reading_order.filter(after) {
            if !reader.offer(*id, || {
                values.iter().map(|v| v.map(str::to_string)).collect()
            }) {
                break;
            }
        }
    }

    /// The entities of a page, in its order, projected.
    pub(crate) fn materialize(&self, refs: &[String], fields: &Fields) -> Vec<Value> {
        refs.iter()
            .filter_map(|r| {
                let at = self
                    .refs
                    .binary_search_by(|x| x.as_bytes().cmp(r.as_bytes()));
                at.ok().map(|i| fields.project(&self.entities[i]))
            })
            .collect()
    }
}

/// Collects one window of matches from candidates offered in order: skips the offset, stops at
/// the limit.
struct Reader<'a> {
    matches: &'a Matches,
    skip: u64,
    room: Option<u64>,
    rows: Vec<(u32, Vec<Option<String>>)>,
}

impl<'a> Reader<'a> {
    fn new(matches: &'a Matches, window: &Window) -> Self {
        Self {
            matches,
            skip: window.offset,
            room: window.limit,
            rows: Vec::new(),
        }
    }

    /// Takes matching candidates from `ids` (walked in reverse when `reverse`).
    fn read(
        &mut self,
        ids: impl DoubleEndedIterator<Item = u32>,
        reverse: bool,
        values: impl Fn(u32) -> Vec<Option<String>>,
    ) {
        if self.room == Some(0) {
            return;
        }
        let ids: Box<dyn Iterator<Item = u32>> = if reverse {
            Box::new(ids.rev())
        } else {
            Box::new(ids)
        };
        for id in ids {
            if !self.offer(id, || values(id)) {
                return;
            }
        }
    }

    /// Offers the next candidate in reading order; `false` once the window is full.
    fn offer(&mut self, id: u32, values: impl FnOnce() -> Vec<Option<String>>) -> bool {
        if self.room == Some(0) {
            return false;
        }
        if !self.matches.has(id) {
            return true;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return true;
        }
        self.rows.push((id, values()));
        if let Some(room) = &mut self.room {
            *room -= 1;
        }
        self.room != Some(0)
    }
}
