//! Properties that hold for any input: reading never panics, valid names stay valid whatever the
//! namespace, references round-trip through their canonical form.

use portico_catalog::{EntityRef, ValidateOptions, validate_documents, validate_entity, yaml};
use proptest::prelude::*;
use serde_json::json;

fn entity(name: &str, namespace: &str, tag: &str) -> serde_json::Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": namespace, "tags": [tag]},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let reports = validate_documents(&bytes, &ValidateOptions::default());
        for r in reports {
            prop_assert!(r.line >= 1);
        }
    }

    #[test]
    fn arbitrary_yaml_like_text_never_panics(text in "[-a-z:{}\\[\\],&*!|>'\"#\n ]{0,200}") {
        let _ = yaml::parse_documents(text.as_bytes());
    }

    #[test]
    fn well_formed_entities_are_valid(
        name in "[a-zA-Z0-9]([-_.a-zA-Z0-9]{0,61}[a-zA-Z0-9])?",
        namespace in "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
        tag in "[a-z0-9:+#]{1,20}(-[a-z0-9:+#]{1,20}){0,2}",
    ) {
        let report = validate_entity(&entity(&name, &namespace, &tag), &ValidateOptions::default());
        prop_assert!(report.is_valid(), "{:?}", report.errors);
    }

    #[test]
    fn names_with_forbidden_characters_are_invalid(
        prefix in "[a-z]{1,5}",
        bad in "[ /@!$%&()=?~]",
        suffix in "[a-z]{1,5}",
    ) {
        let name = format!("{prefix}{bad}{suffix}");
        let report = validate_entity(&entity(&name, "default", "ok"), &ValidateOptions::default());
        prop_assert_eq!(report.errors.len(), 1);
        prop_assert!(report.errors[0].message.starts_with("\"metadata.name\" is not valid"));
    }

    #[test]
    fn the_fast_path_never_accepts_what_the_exact_path_rejects(
        name in "[-_.a-zA-Z0-9 /:]{0,12}",
        namespace in "[-a-zA-Z0-9_]{0,8}",
        tag in "[-a-zA-Z0-9:+#]{0,8}",
        label in "[-_.a-zA-Z0-9/]{0,10}",
        url in "(https?://x|/rel|mailto:a|)",
    ) {
        let mut value = entity(&name, &namespace, &tag);
        value["metadata"]["labels"] = json!({label: "v"});
        value["metadata"]["links"] = json!([{"url": url}]);
        if portico_catalog::fast_path_accepts(&value) {
            prop_assert!(portico_catalog::validate_backstage_exact(&value).is_empty());
        }
    }

    #[test]
    fn references_round_trip(kind in "[A-Za-z][A-Za-z0-9]{0,10}", ns in "[a-z0-9-]{1,10}", name in "[A-Za-z0-9_.-]{1,20}") {
        let r = EntityRef::new(&kind, &ns, &name);
        let parsed = EntityRef::parse(&r.canonical(), None, "default").unwrap();
        prop_assert_eq!(&parsed, &r);
        prop_assert_eq!(parsed.canonical(), r.canonical());
    }

    #[test]
    fn yaml_and_json_of_the_same_entity_agree(name in "[a-z][a-z0-9-]{0,20}[a-z0-9]", tag in "[a-z]{1,10}") {
        let value = entity(&name, "default", &tag);
        let from_json = yaml::parse_single(&value.to_string()).unwrap().unwrap();
        prop_assert_eq!(from_json, value);
    }
}
