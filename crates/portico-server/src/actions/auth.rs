//! `auth:who-am-i`: who the caller is, as Portico authenticated them.

use portico_mcp::actions::{ActionSpec, Attributes, FnAction};
use serde_json::json;

pub(super) fn actions() -> Vec<FnAction> {
    let spec = ActionSpec {
        plugin_id: "auth".into(),
        name: "who-am-i".into(),
        title: "Who am I".into(),
        description: "Returns the identity of the caller: the user entity ref (or service) and the refs that count as them for ownership.".into(),
        input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        output_schema: json!({
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["user", "service"]},
                "userEntityRef": {"type": "string"},
                "subject": {"type": "string"},
                "ownershipEntityRefs": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["type", "subject", "ownershipEntityRefs"]
        }),
        attributes: Attributes {
            read_only: true,
            idempotent: true,
            destructive: false,
        },
    };
    vec![FnAction::new(spec, |caller, _| {
        Box::pin(async move {
            let mut out = json!({
                "type": if caller.is_user() { "user" } else { "service" },
                "subject": caller.subject,
                "ownershipEntityRefs": caller.ownership_refs,
            });
            if caller.is_user() {
                out["userEntityRef"] = json!(caller.subject);
            }
            Ok(out)
        })
    })]
}
