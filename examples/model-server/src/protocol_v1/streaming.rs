//! The fast path of V1 parsing: reads `{"instances": [...]}` straight into
//! checked values, without building a `serde_json::Value` tree of the request.
//!
//! It answers `None` whenever it is not sure (invalid JSON, an unexpected
//! shape, a duplicate key, a value that breaks the schema); the tree-based
//! parser in `mod.rs` then decides and words the error. So it must only
//! accept what that parser accepts, with the same values: every value,
//! including keys it ignores, goes through `serde_json::Value` (cheap for a
//! scalar) and `FeatureSpec::parse_json`, as there.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use trainloop::artifact::{FeatureSchema, FeatureValue};

/// The checked rows, flat in schema order, or `None` to let the tree-based parser decide.
pub fn parse(schema: &FeatureSchema, body: &[u8]) -> Option<Vec<FeatureValue>> {
    let mut values = Vec::new();
    let mut slots = Vec::with_capacity(schema.features().len());
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    Request { schema, values: &mut values, slots: &mut slots }.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(values)
}

/// Any reason to leave the body to the tree-based parser.
fn unsure<E: de::Error>() -> E {
    E::custom("left to the tree-based parser")
}

/// The top-level object: `instances` and keys to ignore.
struct Request<'s> {
    schema: &'s FeatureSchema,
    values: &'s mut Vec<FeatureValue>,
    /// Reused across instances: one value slot per feature.
    slots: &'s mut Vec<Option<Value>>,
}

impl<'de> DeserializeSeed<'de> for Request<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Request<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("{\"instances\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(position) = map.next_key_seed(KeyPosition(instances_key))? {
            match position {
                Some(_) if seen => return Err(unsure()),
                Some(_) => {
                    map.next_value_seed(Instances { schema: self.schema, values: self.values, slots: self.slots })?;
                    seen = true;
                }
                None => {
                    map.next_value::<Value>()?;
                }
            }
        }
        if seen { Ok(()) } else { Err(unsure()) }
    }
}

fn instances_key(key: &str) -> Option<usize> {
    (key == "instances").then_some(0)
}

/// Reads a key as what `position` makes of it, without allocating the key.
struct KeyPosition<F>(F);

impl<'de, F: FnOnce(&str) -> Option<usize>> DeserializeSeed<'de> for KeyPosition<F> {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, F: FnOnce(&str) -> Option<usize>> Visitor<'de> for KeyPosition<F> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok((self.0)(key))
    }
}

struct Instances<'s> {
    schema: &'s FeatureSchema,
    values: &'s mut Vec<FeatureValue>,
    slots: &'s mut Vec<Option<Value>>,
}

impl<'de> DeserializeSeed<'de> for Instances<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Instances<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of instances")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(hint) = seq.size_hint() {
            self.values.reserve(hint * self.schema.features().len());
        }
        while seq
            .next_element_seed(Instance { schema: self.schema, values: &mut *self.values, slots: &mut *self.slots })?
            .is_some()
        {}
        Ok(())
    }
}

/// One instance: an object keyed by feature name, or an array in schema order.
struct Instance<'s> {
    schema: &'s FeatureSchema,
    values: &'s mut Vec<FeatureValue>,
    slots: &'s mut Vec<Option<Value>>,
}

impl Instance<'_> {
    /// Checks the slots in schema order, as `FeatureSchema::validate_values` does.
    fn check<E: de::Error>(self) -> Result<(), E> {
        for (spec, slot) in self.schema.features().iter().zip(self.slots.iter_mut()) {
            let value = slot.take().unwrap_or(Value::Null);
            self.values.push(spec.parse_json(&value).map_err(|_| unsure())?);
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Instance<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Instance<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let features = self.schema.features();
        self.slots.clear();
        self.slots.resize(features.len(), None);
        let feature_position = |key: &str| features.iter().position(|f| f.name == key);
        while let Some(position) = map.next_key_seed(KeyPosition(feature_position))? {
            let value: Value = map.next_value()?;
            if let Some(slot) = position.and_then(|i| self.slots.get_mut(i)) {
                if slot.is_some() {
                    return Err(unsure());
                }
                *slot = Some(value);
            }
        }
        self.check()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let width = self.schema.features().len();
        self.slots.clear();
        while let Some(value) = seq.next_element::<Value>()? {
            if self.slots.len() == width {
                return Err(unsure());
            }
            self.slots.push(Some(value));
        }
        if self.slots.len() != width {
            return Err(unsure());
        }
        self.check()
    }
}
