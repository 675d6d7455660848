//! The benchmark's catalog: a deterministic mix of Groups, Users, Systems, Resources, APIs and
//! Components (most of them) that refer to each other the way a real organisation's catalog
//! does, written as one multi-document YAML file for Portico, and the same entities as Portico
//! holds them (namespace filled in, location annotations, uid, etag, relations) as a JSON array
//! for the Python server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use portico_catalog::{Entity, ValidateOptions, relations::relations, validate_entity};
use serde_json::{Map, Value, json};

/// A small seeded pseudo-random generator (SplitMix64): the same seed, the same catalog.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `max` distinct elements (at least `min`), in their original order.
    pub fn some<'a, T>(&mut self, items: &'a [T], min: usize, max: usize) -> Vec<&'a T> {
        let want = (min + self.below(max - min + 1)).min(items.len());
        let mut chosen: Vec<usize> = Vec::with_capacity(want);
        while chosen.len() < want {
            let i = self.below(items.len());
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        chosen.sort_unstable();
        chosen.into_iter().map(|i| &items[i]).collect()
    }
}

const DOMAINS: &[&str] = &[
    "payments",
    "checkout",
    "search",
    "catalog",
    "identity",
    "billing",
    "inventory",
    "shipping",
    "orders",
    "pricing",
    "analytics",
    "notifications",
    "recommendations",
    "fraud",
    "ledger",
    "accounts",
    "media",
    "messaging",
    "profile",
    "reviews",
    "loyalty",
    "warehouse",
    "tax",
    "reporting",
    "onboarding",
    "support",
    "content",
    "gateway",
    "scheduling",
    "compliance",
];
const NOUNS: &[&str] = &[
    "service",
    "worker",
    "web",
    "ui",
    "processor",
    "indexer",
    "router",
    "sync",
    "exporter",
    "importer",
    "engine",
    "portal",
    "bridge",
    "store",
    "cache",
    "tracker",
    "monitor",
    "adapter",
    "agent",
    "scheduler",
];
const SQUADS: &[&str] = &["alpha", "bravo", "core", "platform", "edge"];
const DEPARTMENTS: &[&str] = &[
    "engineering",
    "product",
    "data",
    "infrastructure",
    "security",
    "mobile",
    "web-platform",
    "operations",
    "commerce",
    "growth",
];
const SYSTEM_SUFFIXES: &[&str] = &[
    "platform", "suite", "system", "hub", "core", "stack", "cloud",
];
const FIRST: &[&str] = &[
    "ada", "alan", "alice", "amara", "ben", "carla", "chen", "dara", "diego", "elena", "emil",
    "fatima", "felix", "grace", "hana", "ivan", "jade", "jonas", "kai", "lara", "leo", "lina",
    "marco", "maya", "nadia", "noah", "olga", "omar", "priya", "quinn", "rafael", "rosa", "sami",
    "sofia", "tariq", "uma", "victor", "wen", "yusuf", "zoe",
];
const LAST: &[&str] = &[
    "abbott",
    "bauer",
    "costa",
    "dubois",
    "eriksen",
    "fischer",
    "garcia",
    "haddad",
    "ito",
    "jensen",
    "kowalski",
    "larsen",
    "moreau",
    "nakamura",
    "okafor",
    "petrov",
    "quispe",
    "rossi",
    "silva",
    "tanaka",
    "ueda",
    "vargas",
    "weber",
    "xu",
    "yilmaz",
    "zhang",
    "andersen",
    "brown",
    "chopra",
    "dimitrov",
    "evans",
    "fontaine",
    "gupta",
    "hughes",
    "iqbal",
    "jovanovic",
    "khan",
    "lopez",
    "mensah",
    "novak",
];
const LANGUAGES: &[&str] = &[
    "java",
    "kotlin",
    "go",
    "python",
    "typescript",
    "rust",
    "scala",
    "ruby",
];
const TAGS: &[&str] = &[
    "grpc", "rest", "kafka", "postgres", "internal", "public", "pci", "gdpr", "tier-1", "batch",
];
const REGIONS: &[&str] = &["eu-west-1", "us-east-1", "ap-southeast-2"];
const DESCRIPTIONS: &[&str] = &[
    "Handles the requests of the storefront and the mobile apps.",
    "Keeps the records in sync with the upstream system of record.",
    "Consumes events from Kafka and writes the read models.",
    "Serves the internal dashboards and the reporting exports.",
    "Owns the public REST API and its rate limits.",
    "Batch jobs that reconcile the nightly files.",
];

/// How many entities of each kind, for a catalog of `n`: Components are 55%.
fn shares(n: usize) -> [(&'static str, usize); 6] {
    let groups = (n * 15 / 1000).max(DEPARTMENTS.len() + 1);
    let users = n * 15 / 100;
    let systems = n * 2 / 100;
    let resources = n / 10;
    let apis = n * 165 / 1000;
    let components = n.saturating_sub(groups + users + systems + resources + apis);
    [
        ("Group", groups),
        ("User", users),
        ("System", systems),
        ("Resource", resources),
        ("API", apis),
        ("Component", components),
    ]
}

fn envelope(kind: &str, metadata: Map<String, Value>, spec: Value) -> Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec})
}

fn title_of(name: &str) -> String {
    name.split(['-', '.'])
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Metadata a software entity carries: description, labels, annotations, tags, links.
fn metadata(rng: &mut Rng, name: &str, title: bool, software: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    if title && rng.percent(50) {
        m.insert("title".into(), title_of(name).into());
    }
    if rng.percent(75) {
        m.insert("description".into(), (*rng.pick(DESCRIPTIONS)).into());
    }
    if !software {
        return m;
    }
    if rng.percent(60) {
        let mut labels = Map::new();
        labels.insert("tier".into(), rng.pick(&["1", "2", "3"]).to_string().into());
        if rng.percent(50) {
            labels.insert("acme.com/region".into(), (*rng.pick(REGIONS)).into());
        }
        m.insert("labels".into(), labels.into());
    }
    let mut annotations = Map::new();
    annotations.insert(
        "github.com/project-slug".into(),
        format!("acme/{name}").into(),
    );
    if rng.percent(60) {
        annotations.insert("backstage.io/techdocs-ref".into(), "dir:.".into());
    }
    if rng.percent(25) {
        annotations.insert(
            "pagerduty.com/service-id".into(),
            format!("P{:06X}", rng.below(0xff_ffff)).into(),
        );
    }
    m.insert("annotations".into(), annotations.into());
    let mut tags = vec![Value::from(*rng.pick(LANGUAGES))];
    tags.extend(rng.some(TAGS, 0, 3).into_iter().map(|t| Value::from(*t)));
    m.insert("tags".into(), tags.into());
    if rng.percent(35) {
        m.insert(
            "links".into(),
            json!([{"url": format!("https://runbooks.acme.com/{name}"), "title": "Runbook", "icon": "docs"}]),
        );
    }
    m
}

/// The raw entities, as a team would write them (no namespace: it defaults).
pub fn generate(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    let counts: BTreeMap<&str, usize> = shares(n).into_iter().collect();
    let mut out = Vec::with_capacity(n);

    // Groups: departments, then teams under them.
    let mut teams = Vec::new();
    for i in 0..counts["Group"] {
        let (name, spec) = if let Some(department) = DEPARTMENTS.get(i) {
            let name = department.to_string();
            let spec = json!({"type": "department", "children": [],
                "profile": {"displayName": title_of(&name), "email": format!("{name}@acme.com")}});
            (name, spec)
        } else {
            let t = i - DEPARTMENTS.len();
            let base = format!(
                "{}-{}",
                DOMAINS[t % DOMAINS.len()],
                SQUADS[(t / DOMAINS.len()) % SQUADS.len()]
            );
            let name = if t < DOMAINS.len() * SQUADS.len() {
                base
            } else {
                format!("{base}-{t}")
            };
            let spec = json!({"type": "team", "parent": rng.pick(DEPARTMENTS), "children": [],
                "profile": {"displayName": title_of(&name), "email": format!("{name}@acme.com")}});
            teams.push(name.clone());
            (name, spec)
        };
        let meta = metadata(&mut rng, &name, false, false);
        out.push(envelope("Group", meta, spec));
    }
    // Users: first.last, unique, members of one or two teams.
    for i in 0..counts["User"] {
        let pair = i % (FIRST.len() * LAST.len());
        let (first, last) = (FIRST[pair % FIRST.len()], LAST[pair / FIRST.len()]);
        let name = if i < FIRST.len() * LAST.len() {
            format!("{first}.{last}")
        } else {
            format!("{first}.{last}{i}")
        };
        let mut meta = Map::new();
        meta.insert("name".into(), name.clone().into());
        let member_of: Vec<Value> = rng
            .some(&teams, 1, 2)
            .into_iter()
            .map(|t| Value::from(t.as_str()))
            .collect();
        let spec = json!({"profile": {"displayName": format!("{} {}", title_of(first), title_of(last)),
            "email": format!("{name}@acme.com")}, "memberOf": member_of});
        out.push(envelope("User", meta, spec));
    }
    let owner = |rng: &mut Rng| -> String {
        let team = rng.pick(&teams);
        if rng.percent(80) {
            team.clone()
        } else {
            format!("group:default/{team}")
        }
    };
    // Systems.
    let mut systems = Vec::new();
    for i in 0..counts["System"] {
        let name = format!(
            "{}-{}",
            DOMAINS[i % DOMAINS.len()],
            SYSTEM_SUFFIXES[(i / DOMAINS.len()) % SYSTEM_SUFFIXES.len()]
        );
        let name = if i < DOMAINS.len() * SYSTEM_SUFFIXES.len() {
            name
        } else {
            format!("{name}-{i}")
        };
        let meta = metadata(&mut rng, &name, true, false);
        let spec = json!({"owner": owner(&mut rng)});
        systems.push(name);
        out.push(envelope("System", meta, spec));
    }
    // Resources.
    let mut resources = Vec::new();
    for i in 0..counts["Resource"] {
        let kind = *rng.pick(&["database", "database", "s3-bucket", "kafka-topic", "redis"]);
        let name = format!("{}-{kind}-{i:04}", rng.pick(DOMAINS));
        let meta = metadata(&mut rng, &name, false, true);
        let spec = json!({"type": kind, "owner": owner(&mut rng), "system": rng.pick(&systems)});
        resources.push(name);
        out.push(envelope("Resource", meta, spec));
    }
    // APIs.
    let mut apis = Vec::new();
    for i in 0..counts["API"] {
        let name = format!("{}-{}-api-{i:04}", rng.pick(DOMAINS), rng.pick(NOUNS));
        let meta = metadata(&mut rng, &name, true, true);
        let (kind, definition) = match rng.below(10) {
            0..6 => (
                "openapi",
                format!(
                    "openapi: 3.0.3\ninfo:\n  title: {name}\n  version: 1.{}.0\npaths:\n  /items/{{id}}:\n    get:\n      summary: Read one item\n      responses:\n        '200':\n          description: The item\n",
                    i % 7
                ),
            ),
            6 | 7 => (
                "grpc",
                "syntax = \"proto3\";\npackage acme.v1;\nservice Items {\n  rpc GetItem (GetItemRequest) returns (Item);\n}\n".to_string(),
            ),
            8 => (
                "graphql",
                "type Query {\n  item(id: ID!): Item\n}\ntype Item {\n  id: ID!\n  title: String\n}\n".to_string(),
            ),
            _ => (
                "asyncapi",
                format!("asyncapi: 2.6.0\ninfo:\n  title: {name}\n  version: 1.0.0\nchannels: {{}}\n"),
            ),
        };
        let lifecycle = *rng.pick(&[
            "production",
            "production",
            "production",
            "production",
            "production",
            "production",
            "production",
            "experimental",
            "experimental",
            "deprecated",
        ]);
        let spec = json!({"type": kind, "lifecycle": lifecycle, "owner": owner(&mut rng),
            "system": rng.pick(&systems), "definition": definition});
        apis.push(name);
        out.push(envelope("API", meta, spec));
    }
    // Components: 60% production, 25% experimental, 15% deprecated.
    for i in 0..counts["Component"] {
        let name = format!("{}-{}-{i:04}", rng.pick(DOMAINS), rng.pick(NOUNS));
        let meta = metadata(&mut rng, &name, true, true);
        let lifecycle = match rng.below(20) {
            0..12 => "production",
            12..17 => "experimental",
            _ => "deprecated",
        };
        let mut spec = json!({
            "type": rng.pick(&["service", "service", "service", "website", "library"]),
            "lifecycle": lifecycle,
            "owner": owner(&mut rng),
        });
        if rng.percent(80) {
            spec["system"] = rng.pick(&systems).as_str().into();
        }
        if rng.percent(45) {
            spec["providesApis"] = json!(rng.some(&apis, 1, 2));
        }
        if rng.percent(50) {
            let consumed: Vec<String> = rng
                .some(&apis, 1, 3)
                .into_iter()
                .map(|a| format!("api:default/{a}"))
                .collect();
            spec["consumesApis"] = json!(consumed);
        }
        if rng.percent(50) {
            let deps: Vec<String> = rng
                .some(&resources, 1, 2)
                .into_iter()
                .map(|r| format!("resource:{r}"))
                .collect();
            spec["dependsOn"] = json!(deps);
        }
        out.push(envelope("Component", meta, spec));
    }
    out
}

/// Panics with the first problem when a generated entity is not valid: Portico would store it
/// with errors, and the bench wants a clean catalog.
pub fn check(entities: &[Value]) {
    let options = ValidateOptions::default();
    for e in entities {
        let report = validate_entity(e, &options);
        assert!(
            report.is_valid(),
            "generated entity {} is invalid: {:?}",
            e["metadata"]["name"],
            report.errors
        );
    }
}

/// The entities as Portico holds them after reading `location` (`file:/abs/path`): namespace
/// filled in, managed-by annotations, a uid and an etag (made up here, deterministically), and
/// relations in both directions sorted by type and target, as the catalog API shows them.
pub fn as_stored(raw: &[Value], location: &str, seed: u64) -> Vec<Value> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut by_source: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for e in raw {
        let entity = Entity::new(e).expect("entity envelope");
        for r in relations(&entity).expect("relation targets parse") {
            by_source
                .entry(r.source.canonical())
                .or_default()
                .push((r.kind.to_string(), r.target.canonical()));
        }
    }
    raw.iter()
        .map(|e| {
            let mut e = e.clone();
            let entity_ref = Entity::new(&e)
                .expect("entity envelope")
                .entity_ref()
                .canonical();
            let meta = e["metadata"].as_object_mut().expect("metadata");
            meta.entry("namespace").or_insert_with(|| "default".into());
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("annotations");
            for key in [
                "backstage.io/managed-by-location",
                "backstage.io/managed-by-origin-location",
            ] {
                annotations.insert(key.into(), location.into());
            }
            let (a, b) = (rng.next_u64(), rng.next_u64());
            meta.insert(
                "uid".into(),
                format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xfff,
                    b >> 52,
                    b & 0xffff_ffff_ffff
                )
                .into(),
            );
            meta.insert("etag".into(), format!("{:016x}{:016x}", b, a).into());
            let mut rels = by_source.remove(&entity_ref).unwrap_or_default();
            rels.sort();
            rels.dedup();
            e["relations"] = rels
                .into_iter()
                .map(|(kind, target)| {
                    let (k, rest) = target.split_once(':').unwrap_or(("", target.as_str()));
                    let (ns, name) = rest.split_once('/').unwrap_or(("default", rest));
                    json!({"type": kind, "targetRef": target,
                        "target": {"kind": k, "namespace": ns, "name": name}})
                })
                .collect();
            e
        })
        .collect()
}

/// Writes the entities as one multi-document YAML file in block style, after checking that
/// Portico's YAML reader gives back exactly these entities.
pub fn write_yaml(path: &Path, entities: &[Value]) -> std::io::Result<()> {
    let mut out = String::with_capacity(entities.len() * 600);
    for e in entities {
        out.push_str("---\n");
        yaml_map(&mut out, e.as_object().expect("entity object"), 0);
    }
    let documents = portico_catalog::yaml::parse_documents(out.as_bytes());
    assert_eq!(documents.len(), entities.len(), "YAML documents");
    for (d, e) in documents.iter().zip(entities) {
        match &d.content {
            Ok(Some(v)) if v == e => {}
            other => panic!(
                "the YAML of {} (line {}) reads back as {other:?}",
                e["metadata"]["name"], d.line
            ),
        }
    }
    std::fs::write(path, out)
}

fn yaml_key(out: &mut String, key: &str) {
    let plain = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        && key.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
    if plain {
        out.push_str(key);
    } else {
        out.push_str(&Value::from(key).to_string());
    }
}

/// A scalar on one line: a string plain when that is unambiguous (starts with a letter, only
/// name-like characters, not a YAML 1.1 boolean or null), else double-quoted (JSON escapes are
/// YAML escapes); numbers and booleans as they are.
fn yaml_scalar(out: &mut String, v: &Value) {
    if let Value::String(s) = v {
        let plain = s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" ._/@-".contains(&b))
            && !s.ends_with(' ')
            && !matches!(
                s.to_ascii_lowercase().as_str(),
                "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
            );
        if plain {
            out.push_str(s);
            return;
        }
    }
    let _ = write!(out, "{v}");
}

/// A string of several lines as a literal block (`|`), when that gives it back exactly: one
/// final newline, no empty lines, no tabs or carriage returns, no trailing spaces, and a first
/// line that does not start with a space.
fn yaml_block(out: &mut String, s: &str, indent: usize) -> bool {
    let Some(body) = s.strip_suffix('\n') else {
        return false;
    };
    let fits = body.contains('\n')
        && !body.starts_with(' ')
        && !body.contains(['\t', '\r'])
        && body.split('\n').all(|l| !l.is_empty() && !l.ends_with(' '));
    if !fits {
        return false;
    }
    out.push_str(" |\n");
    for line in body.split('\n') {
        out.extend(std::iter::repeat_n(' ', indent + 2));
        out.push_str(line);
        out.push('\n');
    }
    true
}

fn yaml_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (k, v) in map {
        out.extend(std::iter::repeat_n(' ', indent));
        yaml_key(out, k);
        out.push(':');
        yaml_value(out, v, indent);
    }
}

/// The value of a key: on the same line when it is a scalar or a flow sequence of scalars,
/// else on the following lines.
fn yaml_value(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if m.is_empty() => out.push_str(" {}\n"),
        Value::Object(m) => {
            out.push('\n');
            yaml_map(out, m, indent + 2);
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            out.push_str(" [");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_scalar(out, item);
            }
            out.push_str("]\n");
        }
        Value::Array(items) => {
            out.push('\n');
            for item in items {
                out.extend(std::iter::repeat_n(' ', indent + 2));
                out.push_str("- ");
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // First key on the dash line, the others aligned under it.
                        let mut first = true;
                        for (k, v) in m {
                            if !first {
                                out.extend(std::iter::repeat_n(' ', indent + 4));
                            }
                            first = false;
                            yaml_key(out, k);
                            out.push(':');
                            yaml_value(out, v, indent + 4);
                        }
                    }
                    other => {
                        yaml_scalar(out, other);
                        out.push('\n');
                    }
                }
            }
        }
        Value::String(s) if yaml_block(out, s, indent) => {}
        scalar => {
            out.push(' ');
            yaml_scalar(out, scalar);
            out.push('\n');
        }
    }
}
