//! Which feature a V1 instance's key names, looked up for every key of every
//! request. Clients mostly send the features in one of two orders: schema
//! order, or sorted by name (as serde_json's maps and many other encoders do).
//! So the feature after the previous key in either order is tried first, then
//! the features with the key's length and first bytes: a full compare is
//! mostly made once.

use trainloop_contract::FeatureSchema;

pub struct FeatureKeys {
    names: Vec<Box<[u8]>>,
    /// The feature with the smallest name, then after each feature the one
    /// whose name sorts next.
    first_sorted: usize,
    next_sorted: Vec<usize>,
    /// Per feature: its name's length, its first eight bytes (zero-padded),
    /// its index.
    filters: Vec<(usize, u64, usize)>,
}

fn first_bytes(key: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let length = key.len().min(8);
    word[..length].copy_from_slice(&key[..length]);
    u64::from_le_bytes(word)
}

impl FeatureKeys {
    pub fn new(schema: &FeatureSchema) -> Self {
        let names: Vec<Box<[u8]>> = schema.features().iter().map(|spec| spec.name.as_bytes().into()).collect();
        let filters = names.iter().enumerate().map(|(index, name)| (name.len(), first_bytes(name), index)).collect();
        let mut sorted: Vec<usize> = (0..names.len()).collect();
        sorted.sort_by(|a, b| names[*a].cmp(&names[*b]));
        let mut next_sorted = vec![names.len(); names.len()];
        for pair in sorted.windows(2) {
            next_sorted[pair[0]] = pair[1];
        }
        FeatureKeys { first_sorted: sorted.first().copied().unwrap_or(0), next_sorted, names, filters }
    }

    /// The index of the feature named `key`; `previous` is the feature of the
    /// key before it in the same instance, if any.
    pub fn position(&self, key: &[u8], previous: Option<usize>) -> Option<usize> {
        let (in_schema_order, sorted) = match previous {
            Some(previous) => (previous + 1, self.next_sorted.get(previous).copied()),
            None => (0, Some(self.first_sorted)),
        };
        for guess in [Some(in_schema_order), sorted].into_iter().flatten() {
            if self.names.get(guess).is_some_and(|name| **name == *key) {
                return Some(guess);
            }
        }
        let first = first_bytes(key);
        self.filters
            .iter()
            .find(|&&(length, bytes, index)| length == key.len() && bytes == first && *self.names[index] == *key)
            .map(|&(_, _, index)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_feature_in_any_order_and_nothing_else() {
        let schema = FeatureSchema::from_json(
            r#"[{"name":"mean_perimeter","type":"number"},{"name":"mean_concavity","type":"number"},
                {"name":"mean_concavity_x","type":"number"},{"name":"m","type":"number"},{"name":"","type":"number"}]"#,
        )
        .unwrap();
        let keys = FeatureKeys::new(&schema);
        let previous = [None, Some(0), Some(1), Some(2), Some(3), Some(4), Some(9)];
        for (index, spec) in schema.features().iter().enumerate() {
            for previous in previous {
                assert_eq!(
                    keys.position(spec.name.as_bytes(), previous),
                    Some(index),
                    "{} after {previous:?}",
                    spec.name
                );
            }
        }
        for other in ["mean_concavitx", "mean_concavity_", "mean_per", "M", "mean_perimeter ", "\u{e9}"] {
            for previous in previous {
                assert_eq!(keys.position(other.as_bytes(), previous), None, "{other}");
            }
        }
    }
}
