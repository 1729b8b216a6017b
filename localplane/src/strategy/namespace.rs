//! Namespaces: deleting one deletes everything in it (synchronously: no `Terminating` phase);
//! DELETE answers with the namespace; the collection cannot be deleted at once.

use serde_json::Value;

use super::Strategy;
use crate::store::{State, name_of};

pub struct Namespace;

impl Strategy for Namespace {
    fn removing(&self, state: &mut State, old: &Value) {
        state.empty_namespace(name_of(old));
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn deletes_collections(&self) -> bool {
        false
    }
}
