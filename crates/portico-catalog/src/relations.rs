//! Relations that built-in kinds declare through spec fields (`spec.owner` → `ownedBy`, …), in both
//! directions, as the stock catalog's built-in kinds processor emits them.

use serde::Serialize;
use serde_json::Value;

use crate::entity::Entity;
use crate::entity_ref::{EntityRef, RefError, split_ref};

/// A spec field that names other entities, and the relation pair it creates.
struct RelationField {
    kind: &'static str,
    field: &'static str,
    default_kind: Option<&'static str>,
    forward: &'static str,
    reverse: &'static str,
}

const fn rel(
    kind: &'static str,
    field: &'static str,
    default_kind: Option<&'static str>,
    forward: &'static str,
    reverse: &'static str,
) -> RelationField {
    RelationField {
        kind,
        field,
        default_kind,
        forward,
        reverse,
    }
}

/// Relation types, as Backstage names them.
pub mod types {
    pub const OWNED_BY: &str = "ownedBy";
    pub const OWNER_OF: &str = "ownerOf";
    pub const PART_OF: &str = "partOf";
    pub const HAS_PART: &str = "hasPart";
    pub const PROVIDES_API: &str = "providesApi";
    pub const API_PROVIDED_BY: &str = "apiProvidedBy";
    pub const CONSUMES_API: &str = "consumesApi";
    pub const API_CONSUMED_BY: &str = "apiConsumedBy";
    pub const DEPENDS_ON: &str = "dependsOn";
    pub const DEPENDENCY_OF: &str = "dependencyOf";
    pub const MEMBER_OF: &str = "memberOf";
    pub const HAS_MEMBER: &str = "hasMember";
    pub const CHILD_OF: &str = "childOf";
    pub const PARENT_OF: &str = "parentOf";
}
use types::*;

const GROUP: Option<&str> = Some("Group");

/// Every relation-bearing field of every built-in kind.
const FIELDS: &[RelationField] = &[
    rel("Component", "owner", GROUP, OWNED_BY, OWNER_OF),
    rel(
        "Component",
        "subcomponentOf",
        Some("Component"),
        PART_OF,
        HAS_PART,
    ),
    rel(
        "Component",
        "providesApis",
        Some("API"),
        PROVIDES_API,
        API_PROVIDED_BY,
    ),
    rel(
        "Component",
        "consumesApis",
        Some("API"),
        CONSUMES_API,
        API_CONSUMED_BY,
    ),
    rel("Component", "dependsOn", None, DEPENDS_ON, DEPENDENCY_OF),
    rel("Component", "dependencyOf", None, DEPENDENCY_OF, DEPENDS_ON),
    rel("Component", "system", Some("System"), PART_OF, HAS_PART),
    rel("API", "owner", GROUP, OWNED_BY, OWNER_OF),
    rel("API", "system", Some("System"), PART_OF, HAS_PART),
    rel("Resource", "owner", GROUP, OWNED_BY, OWNER_OF),
    rel("Resource", "dependsOn", None, DEPENDS_ON, DEPENDENCY_OF),
    rel("Resource", "dependencyOf", None, DEPENDENCY_OF, DEPENDS_ON),
    rel("Resource", "system", Some("System"), PART_OF, HAS_PART),
    rel("User", "memberOf", GROUP, MEMBER_OF, HAS_MEMBER),
    rel("Group", "parent", GROUP, CHILD_OF, PARENT_OF),
    rel("Group", "children", GROUP, PARENT_OF, CHILD_OF),
    rel("Group", "members", Some("User"), HAS_MEMBER, MEMBER_OF),
    rel("System", "owner", GROUP, OWNED_BY, OWNER_OF),
    rel("System", "domain", Some("Domain"), PART_OF, HAS_PART),
    rel("Domain", "owner", GROUP, OWNED_BY, OWNER_OF),
    rel("Domain", "subdomainOf", Some("Domain"), PART_OF, HAS_PART),
];

/// One directed relation between two entities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relation {
    /// The entity the relation starts from.
    pub source: EntityRef,
    /// Relation type, like `ownedBy`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The entity the relation points to.
    pub target: EntityRef,
}

impl Serialize for EntityRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.canonical())
    }
}

/// The targets named by each relation field of the entity's kind.
fn targets<'e>(
    kind: &'e str,
    spec: Option<&'e serde_json::Map<String, Value>>,
) -> impl Iterator<Item = (&'static RelationField, &'e str)> {
    FIELDS
        .iter()
        .filter(move |f| f.kind == kind)
        .flat_map(move |f| {
            let values: &'e [Value] = match spec.and_then(|s| s.get(f.field)) {
                Some(Value::Array(items)) => items,
                Some(value @ Value::String(_)) => std::slice::from_ref(value),
                _ => &[],
            };
            values.iter().filter_map(Value::as_str).map(move |t| (f, t))
        })
}

/// The first relation target that is not a valid reference, as Backstage words it.
pub(crate) fn first_ref_error(entity: &Entity<'_>) -> Option<RefError> {
    first_ref_error_in(entity.kind(), entity.spec())
}

/// [`first_ref_error`] for a kind and spec already at hand.
pub(crate) fn first_ref_error_in(
    kind: &str,
    spec: Option<&serde_json::Map<String, Value>>,
) -> Option<RefError> {
    targets(kind, spec).find_map(|(field, target)| match split_ref(target) {
        Err(e) => Some(e),
        Ok(parts) if parts.kind.is_none() && field.default_kind.is_none() => {
            Some(RefError::MissingKind(target.to_string()))
        }
        Ok(_) => None,
    })
}

/// Both directions of every relation the entity declares. Targets without a namespace inherit
/// the entity's own.
pub fn relations(entity: &Entity<'_>) -> Result<Vec<Relation>, RefError> {
    let source = entity.entity_ref();
    let mut out = Vec::new();
    for (field, target) in targets(entity.kind(), entity.spec()) {
        let target = EntityRef::parse(target, field.default_kind, &source.namespace)?;
        out.push(Relation {
            source: source.clone(),
            kind: field.forward,
            target: target.clone(),
        });
        out.push(Relation {
            source: target,
            kind: field.reverse,
            target: source.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_owner_and_system() {
        let value = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
            "metadata": {"name": "x", "namespace": "tools"},
            "spec": {"owner": "platform-team", "system": "default/portal", "type": "openapi"}});
        let entity = Entity::new(&value).unwrap();
        let found: Vec<String> = relations(&entity)
            .unwrap()
            .iter()
            .map(|r| format!("{} {} {}", r.source, r.kind, r.target))
            .collect();
        assert_eq!(
            found,
            [
                "api:tools/x ownedBy group:tools/platform-team",
                "group:tools/platform-team ownerOf api:tools/x",
                "api:tools/x partOf system:default/portal",
                "system:default/portal hasPart api:tools/x",
            ]
        );
    }

    #[test]
    fn user_owner_is_kept() {
        let value = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
            "metadata": {"name": "x"}, "spec": {"owner": "user:jane"}});
        let entity = Entity::new(&value).unwrap();
        assert_eq!(
            relations(&entity).unwrap()[0].target.canonical(),
            "user:default/jane"
        );
    }
}
