//! Core Events: the `source` label reads `source.component`.

use super::{FieldLabel, Strategy};

pub struct Event;

impl Strategy for Event {
    fn field_labels(&self) -> &'static [FieldLabel] {
        &[FieldLabel { label: "source", path: "source.component", zero: "" }]
    }
}
