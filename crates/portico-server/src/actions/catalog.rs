//! The catalog's actions: read entities (one by name, or a query), validate one, register and
//! unregister locations, and list the MCP servers — each run as the caller.

use portico_catalog::service::query::QueryRequest;
use portico_catalog::service::{Catalog, LocationOrigin};
use portico_catalog::validate_entity;
use portico_mcp::actions::{ActionError, ActionSpec, Attributes, Caller, FnAction};
use serde_json::{Map, Value, json};

use super::action_error;

const READ: Attributes = Attributes {
    read_only: true,
    idempotent: true,
    destructive: false,
};

fn spec(
    name: &str,
    title: &str,
    description: &str,
    input: Value,
    output: Value,
    attributes: Attributes,
) -> ActionSpec {
    ActionSpec {
        plugin_id: "catalog".into(),
        name: name.into(),
        title: title.into(),
        description: description.into(),
        input_schema: input,
        output_schema: output,
        attributes,
    }
}

/// Registering and removing locations changes what everyone sees: users only, and only the
/// catalog admins when `catalog.admins` names some.
fn may_write(catalog: &Catalog, caller: &Caller) -> bool {
    let admins = &catalog.options().admins;
    caller.is_user()
        && (admins.is_empty()
            || caller
                .ownership_refs
                .iter()
                .chain(std::iter::once(&caller.subject))
                .any(|r| admins.iter().any(|a| a.eq_ignore_ascii_case(r))))
}

pub(super) fn actions(catalog: &Catalog) -> Vec<FnAction> {
    let entity_schema = json!({"type": "object"});
    let filter_object = json!({
        "type": "object",
        "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    });
    let order_field = json!({
        "type": "object",
        "properties": {"field": {"type": "string"}, "order": {"type": "string", "enum": ["asc", "desc"]}},
        "required": ["field"]
    });
    let c = catalog.clone();
    let get = FnAction::new(
        spec(
            "get-catalog-entity",
            "Get catalog entity",
            "Returns one entity of the software catalog by name, optionally narrowed by kind and namespace. Fails when no entity, or more than one, matches.",
            json!({
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "description": "Entity kind, e.g. Component, API, User"},
                    "namespace": {"type": "string", "description": "Namespace, e.g. default"},
                    "name": {"type": "string", "description": "Entity name"}
                },
                "required": ["name"],
                "additionalProperties": false
            }),
            entity_schema.clone(),
            READ,
        ),
        move |_, input| {
            let catalog = c.clone();
            Box::pin(async move { get_entity(&catalog, &input).await })
        },
    );
    let c = catalog.clone();
    let query = FnAction::new(
        spec(
            "query-catalog-entities",
            "Query catalog entities",
            "Finds entities in the software catalog. `filter` is an object of field path to value(s) (all must match; several values mean any of them) or a list of such objects (any may match), e.g. {\"kind\": \"component\", \"spec.lifecycle\": \"production\"}; `fields` picks what to return; results come in pages (`limit`, then `cursor` = nextPageCursor).",
            json!({
                "type": "object",
                "properties": {
                    "filter": {"anyOf": [filter_object.clone(), {"type": "array", "items": filter_object}, {"type": "string"}]},
                    "fields": {"type": "array", "items": {"type": "string"}},
                    "limit": {"type": "integer", "minimum": 0, "maximum": 10000},
                    "offset": {"type": "integer", "minimum": 0},
                    "orderFields": {"anyOf": [order_field.clone(), {"type": "array", "items": order_field}]},
                    "fullTextFilter": {
                        "type": "object",
                        "properties": {"term": {"type": "string"}, "fields": {"type": "array", "items": {"type": "string"}}},
                        "required": ["term"]
                    },
                    "cursor": {"type": "string"}
                },
                "additionalProperties": false
            }),
            json!({
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": {"type": "object"}},
                    "totalItems": {"type": "integer"},
                    "hasMoreEntities": {"type": "boolean"},
                    "nextPageCursor": {"type": "string"}
                },
                "required": ["items", "totalItems", "hasMoreEntities"]
            }),
            READ,
        ),
        move |_, input| {
            let catalog = c.clone();
            Box::pin(async move { query_entities(&catalog, &input).await })
        },
    );
    let c = catalog.clone();
    let validate = FnAction::new(
        spec(
            "validate-entity",
            "Validate entity",
            "Checks an entity (as JSON) against the catalog's rules without storing it, and lists every problem.",
            json!({
                "type": "object",
                "properties": {"entity": {"type": "object"}, "location": {"type": "string"}},
                "required": ["entity"],
                "additionalProperties": false
            }),
            json!({
                "type": "object",
                "properties": {
                    "valid": {"type": "boolean"},
                    "errors": {"type": "array", "items": {"type": "object"}}
                },
                "required": ["valid", "errors"]
            }),
            READ,
        ),
        move |_, input| {
            let catalog = c.clone();
            Box::pin(async move {
                let report = validate_entity(&input["entity"], &catalog.options().validate);
                Ok(json!({"valid": report.errors.is_empty(), "errors": report.errors}))
            })
        },
    );
    let location_output = json!({
        "type": "object",
        "properties": {
            "location": {"type": "object", "properties": {"id": {"type": "string"}, "type": {"type": "string"}, "target": {"type": "string"}}},
            "entityRefs": {"type": "array", "items": {"type": "string"}},
            "problems": {"type": "array"}
        },
        "required": ["location", "entityRefs"]
    });
    let (c, w) = (catalog.clone(), catalog.clone());
    let register = FnAction::new(
        spec(
            "register-entity",
            "Register entity",
            "Registers a catalog location (a URL, or a file on Portico's host) and reads the entities in it.",
            json!({
                "type": "object",
                "properties": {
                    "target": {"type": "string", "description": "URL (or path, with type file) of the catalog file"},
                    "type": {"type": "string", "enum": ["url", "file"], "default": "url"}
                },
                "required": ["target"],
                "additionalProperties": false
            }),
            location_output,
            Attributes { read_only: false, idempotent: false, destructive: false },
        ),
        move |_, input| {
            let catalog = c.clone();
            Box::pin(async move { register(&catalog, &input).await })
        },
    )
    .visible_to(move |caller| may_write(&w, caller));
    let (c, w) = (catalog.clone(), catalog.clone());
    let unregister = FnAction::new(
        spec(
            "unregister-entity",
            "Unregister entity",
            "Removes a registered location, by id or by target, and the entities that came only from it.",
            json!({
                "type": "object",
                "properties": {"locationId": {"type": "string"}, "target": {"type": "string"}},
                "minProperties": 1,
                "additionalProperties": false
            }),
            json!({
                "type": "object",
                "properties": {"removed": {"type": "object"}},
                "required": ["removed"]
            }),
            Attributes { read_only: false, idempotent: true, destructive: true },
        ),
        move |_, input| {
            let catalog = c.clone();
            Box::pin(async move { unregister(&catalog, &input).await })
        },
    )
    .visible_to(move |caller| may_write(&w, caller));
    let c = catalog.clone();
    let servers = FnAction::new(
        spec(
            "list-mcp-servers",
            "List MCP servers",
            "Lists the MCP servers registered in the catalog: whether each is available (and why not), its transport and URL, and how Portico authenticates to it.",
            json!({
                "type": "object",
                "properties": {"availableOnly": {"type": "boolean", "default": false}},
                "additionalProperties": false
            }),
            json!({
                "type": "object",
                "properties": {"servers": {"type": "array", "items": {"type": "object"}}},
                "required": ["servers"]
            }),
            READ,
        ),
        move |_, input| {
            let catalog = c.clone();
            Box::pin(async move {
                let only = input["availableOnly"].as_bool().unwrap_or(false);
                let servers = catalog.mcp_servers().await.map_err(action_error)?;
                let servers: Vec<_> = servers
                    .into_iter()
                    .filter(|s| !only || s.server.available)
                    .collect();
                Ok(json!({ "servers": servers }))
            })
        },
    );
    vec![get, query, validate, register, unregister, servers]
}

async fn get_entity(catalog: &Catalog, input: &Value) -> Result<Value, ActionError> {
    let name = input["name"].as_str().unwrap_or_default();
    let mut filter = format!("metadata.name={name}");
    for (key, field) in [("kind", "kind"), ("namespace", "metadata.namespace")] {
        if let Some(v) = input[key].as_str() {
            filter.push_str(&format!(",{field}={v}"));
        }
    }
    if name.contains(',') || filter.matches(',').count() > 2 {
        return Err(ActionError::input(format!(
            "No entity found with name \"{name}\""
        )));
    }
    let request = QueryRequest::from_query([("filter", filter.as_str()), ("limit", "20")])
        .map_err(action_error)?;
    let page = catalog
        .query_entities(&request)
        .await
        .map_err(action_error)?;
    match page.items.len() {
        0 => Err(ActionError::input(format!(
            "No entity found with name \"{name}\""
        ))),
        1 => Ok(page.items.into_iter().next().unwrap_or_default()),
        _ => {
            let refs: Vec<String> = page.items.iter().map(entity_ref).collect();
            Err(ActionError::conflict(format!(
                "Multiple entities found with name \"{name}\", please provide more specific filters. Found: {}",
                refs.join(", ")
            )))
        }
    }
}

fn entity_ref(entity: &Value) -> String {
    let s = |p: &str| {
        entity
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let ns = entity
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    format!(
        "{}:{}/{}",
        s("/kind").to_lowercase(),
        ns,
        s("/metadata/name")
    )
}

/// One Backstage filter string from an object of field path → value(s).
fn filter_string(object: &serde_json::Map<String, Value>) -> Result<String, ActionError> {
    let mut parts = Vec::new();
    for (key, value) in object {
        let values: Vec<&str> = match value {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for v in values {
            if key.contains([',', '=']) || v.contains(',') {
                return Err(ActionError::input(format!(
                    "filter: {key}={v} cannot contain a comma"
                )));
            }
            parts.push(format!("{key}={v}"));
        }
    }
    Ok(parts.join(","))
}

async fn query_entities(catalog: &Catalog, input: &Value) -> Result<Value, ActionError> {
    let mut params: Vec<(&str, String)> = Vec::new();
    match &input["filter"] {
        Value::Object(o) => params.push(("filter", filter_string(o)?)),
        Value::Array(items) => {
            for item in items {
                if let Value::Object(o) = item {
                    params.push(("filter", filter_string(o)?));
                }
            }
        }
        Value::String(s) => params.push(("filter", s.clone())),
        _ => {}
    }
    if let Some(fields) = input["fields"].as_array() {
        let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
        params.push(("fields", fields.join(",")));
    }
    let orders: Vec<&Value> = match &input["orderFields"] {
        Value::Array(items) => items.iter().collect(),
        v @ Value::Object(_) => vec![v],
        _ => Vec::new(),
    };
    for o in orders {
        let field = o["field"].as_str().unwrap_or_default();
        let order = o["order"].as_str().unwrap_or("asc");
        params.push(("orderField", format!("{field},{order}")));
    }
    if let Some(term) = input
        .pointer("/fullTextFilter/term")
        .and_then(Value::as_str)
    {
        params.push(("fullTextFilterTerm", term.to_string()));
        if let Some(fields) = input
            .pointer("/fullTextFilter/fields")
            .and_then(Value::as_array)
        {
            let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
            params.push(("fullTextFilterFields", fields.join(",")));
        }
    }
    for key in ["limit", "offset"] {
        if let Some(n) = input[key].as_u64() {
            params.push((key, n.to_string()));
        }
    }
    if let Some(cursor) = input["cursor"].as_str() {
        params.push(("cursor", cursor.to_string()));
    }
    let request = QueryRequest::from_query(params.iter().map(|(k, v)| (*k, v.as_str())))
        .map_err(action_error)?;
    let page = catalog
        .query_entities(&request)
        .await
        .map_err(action_error)?;
    let mut out = Map::new();
    out.insert(
        "hasMoreEntities".into(),
        page.page_info.next_cursor.is_some().into(),
    );
    if let Some(next) = page.page_info.next_cursor {
        out.insert("nextPageCursor".into(), next.into());
    }
    out.insert("totalItems".into(), page.total_items.into());
    // Moved, not copied as `json!` would.
    out.insert("items".into(), Value::Array(page.items));
    Ok(Value::Object(out))
}

async fn register(catalog: &Catalog, input: &Value) -> Result<Value, ActionError> {
    let target = input["target"].as_str().unwrap_or_default();
    let kind = input["type"].as_str().unwrap_or("url");
    let (location, created) = catalog
        .add_location(kind, target, LocationOrigin::Api)
        .await
        .map_err(action_error)?;
    if !created {
        return Err(ActionError::conflict(format!(
            "Location {kind}:{target} already exists"
        )));
    }
    let report = catalog
        .refresh_location(&location.id)
        .await
        .map_err(action_error)?;
    Ok(json!({
        "location": {"id": location.id, "type": location.kind, "target": location.target},
        "entityRefs": report.entity_refs,
        "problems": report.problems,
    }))
}

async fn unregister(catalog: &Catalog, input: &Value) -> Result<Value, ActionError> {
    let locations = catalog.locations().await.map_err(action_error)?;
    let found = locations.into_iter().find(|l| {
        input["locationId"].as_str() == Some(l.id.as_str())
            || input["target"].as_str() == Some(l.target.as_str())
    });
    let location = found.ok_or_else(|| ActionError::not_found("No such location is registered"))?;
    catalog
        .remove_location(&location.id)
        .await
        .map_err(action_error)?;
    Ok(json!({"removed": {"id": location.id, "type": location.kind, "target": location.target}}))
}
