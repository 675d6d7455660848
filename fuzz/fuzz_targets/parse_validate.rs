//! Fuzz target: any bytes, read as a catalog file, must give reports and never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico_catalog::{RemotePolicy, ValidateOptions, validate_documents};

fuzz_target!(|data: &[u8]| {
    let options = ValidateOptions { remote_policy: RemotePolicy { registry_rules: data.first() == Some(&b'#') } };
    for report in validate_documents(data, &options) {
        assert!(report.line >= 1);
        assert!(report.errors.is_empty() || report.errors.iter().all(|e| !e.message.is_empty()));
    }
});
