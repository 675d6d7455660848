//! The JSON schemas `@backstage/catalog-model` validates entities with, written as [`Schema`]
//! values: the envelope, the whole entity, and the spec of each built-in kind.

use super::schema::{ObjectSchema, Schema};

const STR: Schema = Schema::String { non_empty: true };
const ANY_STR: Schema = Schema::String { non_empty: false };
const STR_LIST: Schema = Schema::Array {
    items: &STR,
    min_items: 0,
};
const OPEN: Schema = Schema::Object(&ObjectSchema {
    required: &[],
    closed: false,
    properties: &[],
    string_values: false,
});
const STRING_MAP: Schema = Schema::Object(&ObjectSchema {
    required: &[],
    closed: false,
    properties: &[],
    string_values: true,
});

/// `EntityEnvelope`: checked before anything else.
pub const ENVELOPE: Schema = Schema::Object(&ObjectSchema {
    required: &["apiVersion", "kind", "metadata"],
    closed: false,
    properties: &[
        ("apiVersion", STR),
        ("kind", STR),
        (
            "metadata",
            Schema::Object(&ObjectSchema {
                required: &["name"],
                closed: false,
                properties: &[("name", STR), ("namespace", STR)],
                string_values: false,
            }),
        ),
    ],
    string_values: false,
});

const LINK: Schema = Schema::Object(&ObjectSchema {
    required: &["url"],
    closed: false,
    properties: &[("url", STR), ("title", STR), ("icon", STR), ("type", STR)],
    string_values: false,
});

const ENTITY_META: Schema = Schema::Object(&ObjectSchema {
    required: &["name"],
    closed: false,
    properties: &[
        ("uid", STR),
        ("etag", STR),
        ("name", STR),
        ("namespace", STR),
        ("title", STR),
        ("description", ANY_STR),
        ("labels", STRING_MAP),
        ("annotations", STRING_MAP),
        ("tags", STR_LIST),
        (
            "links",
            Schema::Array {
                items: &LINK,
                min_items: 0,
            },
        ),
    ],
    string_values: false,
});

const REFERENCE: Schema = Schema::Object(&ObjectSchema {
    required: &["kind", "namespace", "name"],
    closed: true,
    properties: &[("kind", STR), ("namespace", STR), ("name", STR)],
    string_values: false,
});

const RELATION: Schema = Schema::Object(&ObjectSchema {
    required: &["type", "targetRef"],
    closed: true,
    properties: &[("type", STR), ("target", REFERENCE), ("targetRef", STR)],
    string_values: false,
});

const STATUS_ITEM: Schema = Schema::Object(&ObjectSchema {
    required: &["type", "level", "message"],
    closed: false,
    properties: &[
        ("type", STR),
        ("level", Schema::StringEnum(&["info", "warning", "error"])),
        ("message", ANY_STR),
        (
            "error",
            Schema::Object(&ObjectSchema {
                required: &["name", "message"],
                closed: false,
                properties: &[
                    ("name", STR),
                    ("message", ANY_STR),
                    ("code", ANY_STR),
                    ("stack", ANY_STR),
                ],
                string_values: false,
            }),
        ),
    ],
    string_values: false,
});

/// `Entity`: the whole entity, checked by `SchemaValidEntityPolicy`.
pub const ENTITY: Schema = Schema::Object(&ObjectSchema {
    required: &["apiVersion", "kind", "metadata"],
    closed: true,
    properties: &[
        ("apiVersion", STR),
        ("kind", STR),
        ("metadata", ENTITY_META),
        ("spec", OPEN),
        (
            "relations",
            Schema::Array {
                items: &RELATION,
                min_items: 0,
            },
        ),
        (
            "status",
            Schema::Object(&ObjectSchema {
                required: &[],
                closed: false,
                properties: &[(
                    "items",
                    Schema::Array {
                        items: &STATUS_ITEM,
                        min_items: 0,
                    },
                )],
                string_values: false,
            }),
        ),
    ],
    string_values: false,
});

/// The `apiVersion` values every built-in kind accepts.
pub const KIND_API_VERSIONS: &[&str] = &["backstage.io/v1alpha1", "backstage.io/v1beta1"];

const PROFILE: Schema = Schema::Object(&ObjectSchema {
    required: &[],
    closed: false,
    properties: &[("displayName", STR), ("email", STR), ("picture", STR)],
    string_values: false,
});

macro_rules! kind_spec {
    ([$($req:literal),*], [$(($name:literal, $schema:expr)),* $(,)?]) => {
        Schema::Object(&ObjectSchema {
            required: &["spec"],
            closed: false,
            properties: &[(
                "spec",
                Schema::Object(&ObjectSchema {
                    required: &[$($req),*],
                    closed: false,
                    properties: &[$(($name, $schema)),*],
                    string_values: false,
                }),
            )],
            string_values: false,
        })
    };
}

/// `API` v1alpha1: `spec.definition` is required.
pub const API: Schema = kind_spec!(
    ["type", "lifecycle", "owner", "definition"],
    [
        ("type", STR),
        ("lifecycle", STR),
        ("owner", STR),
        ("system", STR),
        ("definition", STR)
    ]
);

/// The upstream alpha `API` variant for MCP servers: `spec.remotes` instead of a definition.
pub const API_MCP_SERVER: Schema = kind_spec!(
    ["type", "lifecycle", "owner", "remotes"],
    [
        ("type", Schema::Const("mcp-server")),
        ("lifecycle", STR),
        ("owner", STR),
        ("system", STR),
        (
            "remotes",
            Schema::Array {
                items: &Schema::Object(&ObjectSchema {
                    required: &["type", "url"],
                    closed: false,
                    properties: &[("type", STR), ("url", STR)],
                    string_values: false,
                }),
                min_items: 1,
            }
        ),
    ]
);

/// Every built-in kind with the schema of its spec, in the order the stock catalog tries them.
pub const KINDS: &[(&str, Schema)] = &[
    ("API", API),
    (
        "Component",
        kind_spec!(
            ["type", "lifecycle", "owner"],
            [
                ("type", STR),
                ("lifecycle", STR),
                ("owner", STR),
                ("system", STR),
                ("subcomponentOf", STR),
                ("providesApis", STR_LIST),
                ("consumesApis", STR_LIST),
                ("dependsOn", STR_LIST),
            ]
        ),
    ),
    (
        "Resource",
        kind_spec!(
            ["type", "owner"],
            [
                ("type", STR),
                ("owner", STR),
                ("dependsOn", STR_LIST),
                ("system", STR)
            ]
        ),
    ),
    (
        "Group",
        kind_spec!(
            ["type", "children"],
            [
                ("type", STR),
                ("profile", PROFILE),
                ("parent", STR),
                ("children", STR_LIST),
                ("members", STR_LIST)
            ]
        ),
    ),
    (
        "Location",
        kind_spec!(
            [],
            [
                ("type", STR),
                ("target", STR),
                ("targets", STR_LIST),
                ("presence", Schema::StringEnum(&["required", "optional"])),
            ]
        ),
    ),
    (
        "User",
        kind_spec!(["memberOf"], [("profile", PROFILE), ("memberOf", STR_LIST)]),
    ),
    (
        "System",
        kind_spec!(["owner"], [("owner", STR), ("domain", STR), ("type", STR)]),
    ),
    (
        "Domain",
        kind_spec!(
            ["owner"],
            [("owner", STR), ("subdomainOf", STR), ("type", STR)]
        ),
    ),
];
