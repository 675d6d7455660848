//! A deterministic corpus of catalog entities: every built-in kind, MCP server APIs in the portal
//! shape, the metadata real catalogs carry, and about one entity in ten broken in a way that stock
//! Backstage rejects as well.

use serde_json::{Map, Value, json};

/// A small, fast, seeded pseudo-random generator (SplitMix64): the same seed gives the same corpus
/// on every machine.
pub struct Rng(u64);

impl Rng {
    /// A generator that starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
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

    /// True with the given probability, in percent.
    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// One to `max` distinct elements of `items`, in their original order.
    pub fn some<'a, T>(&mut self, items: &'a [T], max: usize) -> Vec<&'a T> {
        let want = 1 + self.below(max);
        let mut chosen: Vec<usize> = Vec::with_capacity(want);
        while chosen.len() < want.min(items.len()) {
            let i = self.below(items.len());
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        chosen.sort_unstable();
        chosen.into_iter().map(|i| &items[i]).collect()
    }
}

/// The generated entities, with what the generator intended for each.
pub struct Corpus {
    /// The entities, in order.
    pub entities: Vec<Value>,
    /// For each entity, the kind of damage done to it, if any.
    pub damage: Vec<Option<&'static str>>,
    /// How many entities are MCP server APIs (`spec.type: mcp-server`).
    pub mcp_servers: usize,
}

/// Words that product areas and services are named after.
const WORDS: &[&str] = &[
    "payments",
    "search",
    "catalog",
    "billing",
    "checkout",
    "profile",
    "playlist",
    "podcast",
    "ads",
    "analytics",
    "events",
    "gateway",
    "notifications",
    "metadata",
    "storage",
    "identity",
    "pricing",
    "inventory",
    "shipping",
    "recommendations",
    "lyrics",
    "royalties",
    "ingest",
    "media",
    "audit",
    "ledger",
    "fraud",
    "support",
];
/// Second words of service names.
const SUFFIXES: &[&str] = &[
    "service", "api", "worker", "backend", "ui", "sync", "proxy", "jobs", "store", "svc",
];
/// Owning teams (Group names).
const TEAMS: &[&str] = &[
    "platform-team",
    "payments-squad",
    "search-squad",
    "data-platform",
    "web-core",
    "mobile-core",
    "infra",
    "security",
    "growth",
    "content-ops",
];
/// User names, `first.last`.
const PEOPLE: &[&str] = &[
    "jane.doe",
    "john.smith",
    "ana.lima",
    "li.wei",
    "omar.haddad",
    "sofia.rossi",
    "kenji.sato",
];
/// Tags as catalogs use them, including the `:`, `+` and `#` Backstage allows.
const TAGS: &[&str] = &[
    "java",
    "python",
    "go",
    "typescript",
    "rust",
    "grpc",
    "rest",
    "kafka",
    "postgres",
    "k8s",
    "c++",
    "c#",
    "gcp",
    "aws",
    "tier:1",
    "pci",
];
/// Lifecycles, weighted towards production.
const LIFECYCLES: &[&str] = &[
    "production",
    "production",
    "production",
    "experimental",
    "deprecated",
];
/// Cloud regions, for labels and resource names.
const REGIONS: &[&str] = &["eu-west-1", "us-east-1", "us-central1", "ap-northeast-1"];
/// Descriptions, one with non-ASCII text.
const DESCRIPTIONS: &[&str] = &[
    "Handles the request path for this part of the product.",
    "Owned by the team listed below; see the runbook before paging.",
    "Internal service. Talk to us in #help-platform before depending on it.",
    "Batch jobs that reconcile nightly exports with the ledger.",
    "Zürich office: shared tooling for the payments stack.",
    "Public endpoint, rate limited to 100 requests per second per client.",
];

/// Generates `count` entities from `seed`.
pub fn generate(count: usize, seed: u64) -> Corpus {
    let mut rng = Rng::new(seed);
    let mut entities = Vec::with_capacity(count);
    let mut damage = Vec::with_capacity(count);
    let mut mcp_servers = 0;
    for i in 0..count {
        let mut entity = match rng.below(100) {
            0..10 => mcp_server(&mut rng, i),
            10..22 => api(&mut rng, i),
            22..52 => component(&mut rng, i),
            52..64 => resource(&mut rng, i),
            64..70 => system(&mut rng, i),
            70..73 => domain(&mut rng, i),
            73..81 => group(&mut rng, i),
            81..96 => user(&mut rng, i),
            _ => location(&mut rng, i),
        };
        let broken = rng.percent(10).then(|| break_entity(&mut rng, &mut entity));
        if is_mcp(&entity) {
            mcp_servers += 1;
        }
        damage.push(broken);
        entities.push(entity);
    }
    Corpus {
        entities,
        damage,
        mcp_servers,
    }
}

/// Whether an entity is an MCP server API.
fn is_mcp(entity: &Value) -> bool {
    entity.get("kind").and_then(Value::as_str) == Some("API")
        && entity.pointer("/spec/type").and_then(Value::as_str) == Some("mcp-server")
}

/// `apiVersion`, `kind`, `metadata` and `spec`, in the order catalog files usually have them.
fn envelope(kind: &str, metadata: Map<String, Value>, spec: Value) -> Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec})
}

/// A `word-suffix-index` name: unique, and valid as an entity name.
fn service_name(rng: &mut Rng, i: usize) -> String {
    format!("{}-{}-{i}", rng.pick(WORDS), rng.pick(SUFFIXES))
}

/// An owner reference in one of the forms catalogs use.
fn owner(rng: &mut Rng) -> String {
    let team = rng.pick(TEAMS);
    match rng.below(10) {
        0..6 => team.to_string(),
        6 | 7 => format!("group:{team}"),
        8 => format!("group:default/{team}"),
        _ => format!("user:default/{}", rng.pick(PEOPLE)),
    }
}

/// The metadata every kind shares: name, and maybe namespace, title, description, labels,
/// annotations, tags and links.
fn metadata(rng: &mut Rng, name: &str, title: Option<String>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    if rng.percent(20) {
        m.insert(
            "namespace".into(),
            (*rng.pick(&["default", "payments", "platform", "data-eng"])).into(),
        );
    }
    if let Some(title) = title.filter(|_| rng.percent(40)) {
        m.insert("title".into(), title.into());
    }
    if rng.percent(70) {
        m.insert("description".into(), (*rng.pick(DESCRIPTIONS)).into());
    }
    if rng.percent(40) {
        let mut labels = Map::new();
        labels.insert("tier".into(), rng.pick(&["1", "2", "3"]).to_string().into());
        if rng.percent(50) {
            labels.insert("acme.com/region".into(), (*rng.pick(REGIONS)).into());
        }
        if rng.percent(30) {
            labels.insert(
                "cost-center".into(),
                format!("cc-{}", 1000 + rng.below(9000)).into(),
            );
        }
        m.insert("labels".into(), labels.into());
    }
    if rng.percent(70) {
        let mut annotations = Map::new();
        let repo = format!("acme/{name}");
        annotations.insert("github.com/project-slug".into(), repo.clone().into());
        if rng.percent(50) {
            annotations.insert("backstage.io/techdocs-ref".into(), "dir:.".into());
        }
        if rng.percent(40) {
            annotations.insert(
                "backstage.io/source-location".into(),
                format!("url:https://github.com/{repo}/tree/main/").into(),
            );
        }
        if rng.percent(20) {
            annotations.insert(
                "pagerduty.com/service-id".into(),
                format!("P{:06X}", rng.below(0xff_ffff)).into(),
            );
        }
        m.insert("annotations".into(), annotations.into());
    }
    if rng.percent(60) {
        let tags: Vec<Value> = rng
            .some(TAGS, 4)
            .into_iter()
            .map(|t| Value::from(*t))
            .collect();
        m.insert("tags".into(), tags.into());
    }
    if rng.percent(30) {
        let mut links = vec![json!({
            "url": format!("https://runbooks.acme.com/{name}"),
            "title": "Runbook",
            "icon": "docs",
        })];
        if rng.percent(40) {
            links.push(json!({"url": format!("https://grafana.acme.com/d/{name}"), "title": "Dashboard", "type": "dashboard"}));
        }
        m.insert("links".into(), links.into());
    }
    m
}

/// A capitalized title made from a name's words.
fn title_of(name: &str) -> String {
    name.split('-')
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An MCP server API in the portal shape: a registry `server.json` (as YAML) in `spec.definition`.
fn mcp_server(rng: &mut Rng, i: usize) -> Value {
    let name = format!("{}-mcp-{i}", rng.pick(WORDS));
    let title = format!("{} MCP Server", title_of(&name));
    let mut meta = metadata(rng, &name, Some(title.clone()));
    let mut annotations = match meta.remove("annotations") {
        Some(Value::Object(a)) => a,
        _ => Map::new(),
    };
    annotations.insert("mcp.spotify.com/schema-version".into(), "2025-09-29".into());
    match rng.below(10) {
        0..4 => {}
        4..7 => {
            annotations.insert(
                "mcp.spotify.com/auth-api-id".into(),
                "core.auth.github".into(),
            );
            annotations.insert("mcp.spotify.com/auth-scopes".into(), "[\"repo\"]".into());
        }
        _ => {
            annotations.insert(
                "mcp.spotify.com/auth-plugin-id".into(),
                "mcp-actions".into(),
            );
        }
    }
    meta.insert("annotations".into(), annotations.into());
    let description = rng.pick(DESCRIPTIONS);
    let mut definition = format!(
        "name: com.acme/{name}\ndescription: \"{description}\"\nversion: \"{}.{}.{}\"\n",
        rng.below(3),
        rng.below(20),
        rng.below(10)
    );
    if rng.percent(30) {
        definition +=
            &format!("title: \"{title}\"\nwebsiteUrl: \"https://docs.acme.com/mcp/{name}\"\n");
    }
    definition += &format!(
        "remotes:\n  - type: streamable-http\n    url: \"https://{name}.mcp.acme.com/mcp\"\n"
    );
    if rng.percent(20) {
        definition += &format!("  - type: sse\n    url: \"https://{name}.mcp.acme.com/sse\"\n");
    }
    let spec = json!({
        "type": "mcp-server",
        "lifecycle": rng.pick(LIFECYCLES),
        "owner": owner(rng),
        "definition": definition,
    });
    envelope("API", meta, spec)
}

/// An OpenAPI or gRPC API with a short definition.
fn api(rng: &mut Rng, i: usize) -> Value {
    let name = format!("{}-api-{i}", rng.pick(WORDS));
    let meta = metadata(rng, &name, Some(title_of(&name) + " API"));
    let (kind, definition) = if rng.percent(70) {
        (
            "openapi",
            format!(
                "openapi: 3.0.3\ninfo:\n  title: {name}\n  version: 1.0.0\npaths:\n  /items/{{id}}:\n    get:\n      summary: Read one item\n      responses:\n        '200':\n          description: The item\n"
            ),
        )
    } else {
        (
            "grpc",
            "syntax = \"proto3\";\n\npackage acme.v1;\n\nservice Items {\n  rpc GetItem (GetItemRequest) returns (Item);\n}\n\nmessage GetItemRequest {\n  string id = 1;\n}\n\nmessage Item {\n  string id = 1;\n  string title = 2;\n}\n".to_string(),
        )
    };
    let mut spec = json!({"type": kind, "lifecycle": rng.pick(LIFECYCLES), "owner": owner(rng)});
    if rng.percent(50) {
        spec["system"] = format!("{}-system", rng.pick(WORDS)).into();
    }
    spec["definition"] = definition.into();
    envelope("API", meta, spec)
}

/// A Component: a service, website or library, with its API and dependency relations.
fn component(rng: &mut Rng, i: usize) -> Value {
    let name = service_name(rng, i);
    let meta = metadata(rng, &name, Some(title_of(&name)));
    let mut spec = json!({
        "type": rng.pick(&["service", "service", "website", "library"]),
        "lifecycle": rng.pick(LIFECYCLES),
        "owner": owner(rng),
    });
    if rng.percent(60) {
        spec["system"] = format!("{}-system", rng.pick(WORDS)).into();
    }
    if rng.percent(10) {
        spec["subcomponentOf"] = format!("component:{}-service", rng.pick(WORDS)).into();
    }
    if rng.percent(40) {
        spec["providesApis"] = json!([format!("{}-api", rng.pick(WORDS))]);
    }
    if rng.percent(40) {
        let apis: Vec<Value> = rng
            .some(WORDS, 3)
            .into_iter()
            .map(|w| format!("api:default/{w}-api").into())
            .collect();
        spec["consumesApis"] = apis.into();
    }
    if rng.percent(40) {
        spec["dependsOn"] = json!([
            format!("resource:{}-db", rng.pick(WORDS)),
            format!("component:default/{}-service", rng.pick(WORDS)),
        ]);
    }
    envelope("Component", meta, spec)
}

/// A Resource: database, bucket or queue.
fn resource(rng: &mut Rng, i: usize) -> Value {
    let kind = rng.pick(&["database", "s3-bucket", "kafka-topic", "redis"]);
    let name = format!("{}-{kind}-{i}", rng.pick(WORDS));
    let meta = metadata(rng, &name, None);
    let mut spec = json!({"type": kind, "owner": owner(rng)});
    if rng.percent(50) {
        spec["system"] = format!("{}-system", rng.pick(WORDS)).into();
    }
    if rng.percent(20) {
        spec["dependsOn"] = json!([format!("resource:{}-vpc", rng.pick(REGIONS))]);
    }
    envelope("Resource", meta, spec)
}

/// A System, usually part of a domain.
fn system(rng: &mut Rng, i: usize) -> Value {
    let name = format!("{}-system-{i}", rng.pick(WORDS));
    let meta = metadata(rng, &name, Some(title_of(&name)));
    let mut spec = json!({"owner": owner(rng)});
    if rng.percent(70) {
        spec["domain"] = format!("{}-domain", rng.pick(WORDS)).into();
    }
    if rng.percent(20) {
        spec["type"] = "product".into();
    }
    envelope("System", meta, spec)
}

/// A Domain, sometimes a subdomain.
fn domain(rng: &mut Rng, i: usize) -> Value {
    let name = format!("{}-domain-{i}", rng.pick(WORDS));
    let meta = metadata(rng, &name, Some(title_of(&name)));
    let mut spec = json!({"owner": owner(rng)});
    if rng.percent(20) {
        spec["subdomainOf"] = "commerce".into();
    }
    envelope("Domain", meta, spec)
}

/// A Group with a profile, a parent, children and members.
fn group(rng: &mut Rng, i: usize) -> Value {
    let team = rng.pick(TEAMS);
    let name = format!("{team}-{i}");
    let meta = metadata(rng, &name, None);
    let mut spec = json!({
        "type": rng.pick(&["team", "team", "team", "sub-department", "department"]),
        "profile": {"displayName": title_of(&name), "email": format!("{team}@acme.com")},
    });
    if rng.percent(70) {
        spec["parent"] =
            (*rng.pick(&["engineering", "group:default/engineering", "product"])).into();
    }
    let children: Vec<Value> = rng
        .some(TEAMS, 2)
        .into_iter()
        .map(|t| format!("{t}-core").into())
        .collect();
    spec["children"] = children.into();
    if rng.percent(60) {
        let members: Vec<Value> = rng
            .some(PEOPLE, 4)
            .into_iter()
            .map(|p| Value::from(*p))
            .collect();
        spec["members"] = members.into();
    }
    envelope("Group", meta, spec)
}

/// A User with a profile and group memberships.
fn user(rng: &mut Rng, i: usize) -> Value {
    let person = rng.pick(PEOPLE);
    let name = format!("{person}{i}");
    let meta = metadata(rng, &name, None);
    let mut profile = json!({"displayName": title_of(&person.replace('.', "-")), "email": format!("{name}@acme.com")});
    if rng.percent(40) {
        profile["picture"] = format!("https://avatars.acme.com/{name}.png").into();
    }
    let member_of: Vec<Value> = rng
        .some(TEAMS, 2)
        .into_iter()
        .map(|t| Value::from(*t))
        .collect();
    envelope(
        "User",
        meta,
        json!({"profile": profile, "memberOf": member_of}),
    )
}

/// A Location pointing at catalog files.
fn location(rng: &mut Rng, i: usize) -> Value {
    let name = format!("{}-location-{i}", rng.pick(WORDS));
    let meta = metadata(rng, &name, None);
    let repo = rng.pick(WORDS);
    let spec = if rng.percent(60) {
        json!({"type": "url", "target": format!("https://github.com/acme/{repo}/blob/main/catalog-info.yaml")})
    } else {
        json!({
            "type": "url",
            "targets": [
                format!("https://github.com/acme/{repo}/blob/main/catalog-info.yaml"),
                format!("https://github.com/acme/{repo}/blob/main/apis.yaml"),
            ],
            "presence": rng.pick(&["required", "optional"]),
        })
    };
    envelope("Location", meta, spec)
}

/// The `metadata` object of a generated entity.
fn meta_of(entity: &mut Value) -> &mut Map<String, Value> {
    entity
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("generated entities have metadata")
}

/// The `spec` object of a generated entity.
fn spec_of(entity: &mut Value) -> &mut Map<String, Value> {
    entity
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .expect("generated entities have a spec")
}

/// A sub-map of `metadata` (labels, annotations), created when missing.
fn meta_map<'a>(entity: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let meta = meta_of(entity);
    if !meta.get(key).is_some_and(Value::is_object) {
        meta.insert(key.into(), Value::Object(Map::new()));
    }
    meta.get_mut(key)
        .and_then(Value::as_object_mut)
        .expect("just made sure it is an object")
}

/// A list of `metadata` (tags, links), created when missing.
fn meta_list<'a>(entity: &'a mut Value, key: &str) -> &'a mut Vec<Value> {
    let meta = meta_of(entity);
    if !meta.get(key).is_some_and(Value::is_array) {
        meta.insert(key.into(), Value::Array(Vec::new()));
    }
    meta.get_mut(key)
        .and_then(Value::as_array_mut)
        .expect("just made sure it is an array")
}

/// Breaks a valid entity in one of the ways authors do, each of which stock Backstage rejects;
/// returns what was done.
fn break_entity(rng: &mut Rng, entity: &mut Value) -> &'static str {
    let kind = entity["kind"].as_str().unwrap_or_default().to_string();
    let name = entity["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match rng.below(19) {
        0 => {
            meta_of(entity).insert("name".into(), format!("-{name}").into());
            "name starts with a dash"
        }
        1 => {
            meta_of(entity).insert("name".into(), format!("{name}-{}", "x".repeat(64)).into());
            "name longer than 63 characters"
        }
        2 => {
            meta_of(entity).insert("name".into(), format!("{name} copy").into());
            "name with spaces"
        }
        3 => {
            meta_list(entity, "tags").push("Java".into());
            "uppercase tag"
        }
        4 => {
            meta_list(entity, "tags").push("ci--cd".into());
            "tag with a double dash"
        }
        5 => {
            let spec = spec_of(entity);
            let field = match kind.as_str() {
                "API" => *rng.pick(&["owner", "lifecycle", "definition", "type"]),
                "Component" => *rng.pick(&["owner", "lifecycle", "type"]),
                "Resource" => *rng.pick(&["owner", "type"]),
                "Group" => "children",
                "User" => "memberOf",
                "Location" => {
                    spec.insert("presence".into(), "sometimes".into());
                    return "location presence not required/optional";
                }
                _ => "owner",
            };
            spec.remove(field);
            "required spec field missing"
        }
        6 => {
            meta_of(entity).insert("namespace".into(), "Payments".into());
            "uppercase namespace"
        }
        7 => {
            meta_list(entity, "links")
                .push(json!({"url": "docs.acme.com/runbook", "title": "Runbook"}));
            "link url without a scheme"
        }
        8 => {
            entity
                .as_object_mut()
                .expect("entities are objects")
                .insert("owner".into(), "platform-team".into());
            "unknown root field"
        }
        9 => {
            entity["apiVersion"] = "backstage.io/v2alpha1".into();
            "apiVersion no kind accepts"
        }
        10 => {
            entity["kind"] = (*rng.pick(&["Service", "Api", "Team"])).into();
            "unknown kind"
        }
        11 => {
            let spec = spec_of(entity);
            match kind.as_str() {
                "API" | "Component" | "Resource" | "Group" => spec.insert("type".into(), 3.into()),
                "User" => spec.insert("memberOf".into(), "platform-team".into()),
                "Location" => spec.insert("target".into(), 42.into()),
                _ => spec.insert("owner".into(), 42.into()),
            };
            "spec field of the wrong type"
        }
        12 => {
            meta_map(entity, "labels").insert("tier".into(), 1.into());
            "label value not a string"
        }
        13 => {
            meta_map(entity, "annotations").insert("Acme Owner".into(), "platform-team".into());
            "annotation key with a space"
        }
        14 => {
            meta_of(entity).insert("title".into(), "".into());
            "empty title"
        }
        15 => {
            meta_of(entity).remove("name");
            "metadata.name missing"
        }
        16 => {
            entity["spec"] = "tbd".into();
            "spec not an object"
        }
        17 => {
            meta_of(entity).insert("tags".into(), "java,go".into());
            "tags not a list"
        }
        _ => {
            meta_map(entity, "labels").insert("team".into(), "Platform Team".into());
            "label value with a space"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_corpus() {
        let a = generate(500, 7);
        let b = generate(500, 7);
        assert_eq!(a.entities, b.entities);
        assert_eq!(a.mcp_servers, b.mcp_servers);
    }
}
