//! Nodes: `spec.unschedulable` compares as "false" when absent (`kubectl cordon`'s selector).

use super::{FieldLabel, Strategy};

pub struct Node;

impl Strategy for Node {
    fn field_labels(&self) -> &'static [FieldLabel] {
        &[FieldLabel { label: "spec.unschedulable", path: "spec.unschedulable", zero: "false" }]
    }
}
