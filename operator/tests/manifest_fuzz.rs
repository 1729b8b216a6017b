//! Input fuzzing: the example manifests of all four kinds, edited by a hostile hand (fields
//! dropped, unknown ones added, wrong types, out-of-range numbers, weird strings, duplicated list
//! keys, huge lists, bad names), then checked as the API server checks them. Every one is either
//! refused with problems that each name their field, or read by the operator and run through
//! every pure controller step without a panic and without creating anything the API server would
//! refuse.

mod fuzz;
mod support;

use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use trainloop::api::{DriftPolicy, ModelDeployment, TrainingPipeline, TrainingRun};

use fuzz::mutate::{Mutation, apply, mutations, weird_string};
use fuzz::steps;
use support::{cases, documents, server_problems, workspace_root, yaml_files};

/// Generated manifests per run of `make test`: about 20 s in a debug build on a shared 2-core machine.
const CASES: u32 = 3000;

/// The top-level fields a problem may be about.
const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

fn examples() -> Vec<Value> {
    let mut docs: Vec<Value> = yaml_files(&workspace_root().join("examples/manifests"))
        .iter()
        .flat_map(|file| documents(&std::fs::read_to_string(file).unwrap()))
        .collect();
    docs.sort_by_key(|doc| doc["kind"].as_str().map(str::to_owned));
    docs
}

/// `<path>: <what is wrong>`, the path starting at a top-level field; an unknown field is named in
/// the message, and a rule on the whole object has an empty path and names its field at the start
/// of its message.
fn names_its_field(problem: &str) -> bool {
    let Some((path, what)) = problem.split_once(": ") else { return false };
    if what.starts_with("unknown field \"") {
        return true; // names the field itself
    }
    let (path, what) = match path {
        "" => match what.split_once(": ") {
            Some((field, what)) => (field, what),
            None => return false,
        },
        path => (path, what),
    };
    let top = path.split(['.', '[']).next().unwrap_or_default();
    TOP_LEVEL.contains(&top) && !what.trim().is_empty()
}

/// A name for `metadata.name`: the lengths at each limit, or any weird string.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![52usize, 53, 63, 64, 253, 254]).prop_map(|n| "a".repeat(n)),
        Just("a.b".to_string()),
        weird_string(),
    ]
}

/// The findings of running the controllers' pure steps on an accepted document.
fn handled(doc: &Value) -> Vec<String> {
    match doc["kind"].as_str().unwrap_or_default() {
        "TrainingPipeline" => steps::typed::<TrainingPipeline>(doc)
            .map(|p| [steps::round_trips(&p.spec), steps::pipeline(p)].concat())
            .unwrap_or_else(|e| vec![e]),
        "TrainingRun" => steps::typed::<TrainingRun>(doc)
            .map(|r| [steps::round_trips(&r.spec), steps::run(r)].concat())
            .unwrap_or_else(|e| vec![e]),
        // No controller for these yet: reading them is all the operator does with them.
        "ModelDeployment" => {
            steps::typed::<ModelDeployment>(doc).map(|d| steps::round_trips(&d.spec)).unwrap_or_else(|e| vec![e])
        }
        "DriftPolicy" => {
            steps::typed::<DriftPolicy>(doc).map(|d| steps::round_trips(&d.spec)).unwrap_or_else(|e| vec![e])
        }
        other => vec![format!("no example of kind {other}")],
    }
}

#[test]
fn every_generated_manifest_is_refused_naming_its_field_or_handled_without_panic() {
    let examples = examples();
    assert_eq!(examples.len(), 4, "one example of each kind");
    let (accepted, refused) = (Cell::new(0u32), Cell::new(0u32));
    let strategy = (0..examples.len(), mutations(4), prop::option::weighted(0.2, name()));
    let cases = cases(CASES);
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let result = runner.run(&strategy, |(example, edits, name): (usize, Vec<Mutation>, Option<String>)| {
        let mut doc = apply(&examples[example], &edits, &["apiVersion", "kind", "metadata"]);
        if let Some(name) = name {
            doc["metadata"]["name"] = Value::String(name);
        }
        let problems = server_problems(&doc);
        let findings = if problems.is_empty() {
            accepted.set(accepted.get() + 1);
            handled(&doc)
        } else {
            refused.set(refused.get() + 1);
            problems
                .into_iter()
                .filter(|p| !names_its_field(p))
                .map(|p| format!("does not name its field: {p}"))
                .collect()
        };
        if findings.is_empty() {
            Ok(())
        } else {
            Err(TestCaseError::fail(format!(
                "{findings:#?}\nin {}",
                serde_json::to_string(&doc).unwrap_or_default().chars().take(3000).collect::<String>()
            )))
        }
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    eprintln!("{cases} generated manifests: {} refused, {} accepted and reconciled", refused.get(), accepted.get());
    // Both sides must be exercised, or the test proves nothing about one of them.
    assert!(accepted.get() >= cases / 20 && refused.get() >= cases / 20, "{accepted:?} accepted, {refused:?} refused");
}
