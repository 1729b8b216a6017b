//! Kinds served in more than one group version from one storage. A real API server keeps one
//! copy of such objects and converts it to the version each request names; localplane stores
//! the objects in one served form (the "stored" type) and converts at the HTTP boundary:
//! bodies on the way in, objects, list items and watch events on the way out, and field
//! selector labels before they are matched against the stored JSON.

pub mod events;

use serde_json::Value;

/// How a served type maps onto the type its objects are stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// `events.k8s.io/v1` Events, stored as core `v1` Events.
    EventsV1,
}

impl Conversion {
    /// The registry key of the type that holds the objects.
    pub fn stored_key(self) -> &'static str {
        match self {
            Conversion::EventsV1 => "/events",
        }
    }

    /// The stored type's group and kind (field labels are looked up by them).
    pub fn stored_group_kind(self) -> (&'static str, &'static str) {
        match self {
            Conversion::EventsV1 => ("", "Event"),
        }
    }

    /// A stored object as the served version shows it.
    pub fn to_served(self, stored: &Value) -> Value {
        match self {
            Conversion::EventsV1 => events::core_to_events_v1(stored),
        }
    }

    /// A body in the served version as it is stored.
    pub fn to_stored(self, served: Value) -> Value {
        match self {
            Conversion::EventsV1 => events::events_v1_to_core(served),
        }
    }

    /// The stored type's field selector label for a label of the served version.
    pub fn stored_field_label(self, label: &str) -> String {
        match self {
            Conversion::EventsV1 => events::core_field_label(label),
        }
    }
}
