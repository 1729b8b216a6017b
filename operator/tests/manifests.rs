//! Every example manifest is accepted, and every manifest under `tests/invalid/` is rejected
//! with a message naming the offending field.

mod support;

use support::{documents, validate, workspace_root, yaml_files};

#[test]
fn every_example_manifest_is_valid() {
    let mut checked = 0;
    for file in yaml_files(&workspace_root().join("examples")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in documents(&text) {
            if !doc["apiVersion"].as_str().is_some_and(|v| v.starts_with("trainloop.dev/")) {
                continue;
            }
            let problems = validate(&doc);
            assert!(problems.is_empty(), "{}: {problems:#?}", file.display());
            checked += 1;
        }
    }
    assert!(checked >= 4, "expected an example of each resource, found {checked} manifests");
}

/// Each invalid manifest starts with `# field: <path>` and `# message: <text>`: the rejection
/// must name that field and say that text.
#[test]
fn every_invalid_manifest_is_rejected_naming_its_field() {
    let files = yaml_files(&workspace_root().join("operator/tests/invalid"));
    assert!(files.len() >= 10, "expected the invalid-manifest corpus, found {}", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let header = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("# {key}: ")))
                .unwrap_or_else(|| panic!("{} lacks a `# {key}:` line", file.display()))
                .to_owned()
        };
        let (field, message) = (header("field"), header("message"));
        let docs = documents(&text);
        assert_eq!(docs.len(), 1, "{}: one manifest per file", file.display());
        let problems = validate(&docs[0]);
        assert!(
            problems.iter().any(|p| p.starts_with(&field) && p.contains(&message)),
            "{}: expected a problem at {field:?} saying {message:?}, got {problems:#?}",
            file.display()
        );
    }
}
