//! Which feature a V1 instance's key names, looked up for every key of every
//! request. Clients mostly send the features in one of two orders: schema
//! order, or sorted by name (as serde_json's maps and many other encoders do).
//! So the feature after the previous key in either order is tried first (in
//! the order the previous key followed, then the other), its name compared in
//! place with the body's bytes; then the key is read and the features with its
//! length and first bytes compared with it.

use trainloop_contract::FeatureSchema;

use crate::json_scan::Scanner;

pub struct FeatureKeys {
    names: Vec<Box<[u8]>>,
    /// Per feature: its name in quotes if JSON writes it as it is (no quote,
    /// backslash or control character to escape), so that a body's key can
    /// be compared with it byte for byte; else `None`.
    quoted: Vec<Option<Box<[u8]>>>,
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
        let quoted = names
            .iter()
            .map(|name| {
                let plain = name.iter().all(|&b| b != b'"' && b != b'\\' && b >= 0x20);
                plain.then(|| [&b"\""[..], name, b"\""].concat().into())
            })
            .collect();
        FeatureKeys { first_sorted: sorted.first().copied().unwrap_or(0), next_sorted, names, quoted, filters }
    }

    /// Reads an object key and its colon, and answers the index of the
    /// feature it names; `previous` is the feature of the key before it in
    /// the same instance, if any, and `sorted` whether that key was found in
    /// name order (updated for this key).
    #[inline]
    pub fn read(&self, scanner: &mut Scanner, previous: Option<usize>, sorted: &mut bool) -> Option<usize> {
        let (in_schema_order, in_name_order) = match previous {
            Some(previous) => (Some(previous + 1), self.next_sorted.get(previous).copied()),
            None => (Some(0), Some(self.first_sorted)),
        };
        let guesses = match *sorted {
            false => [(in_schema_order, false), (in_name_order, true)],
            true => [(in_name_order, true), (in_schema_order, false)],
        };
        for (guess, in_name_order) in guesses {
            if let Some(guess) = guess
                && let Some(Some(quoted)) = self.quoted.get(guess)
                && scanner.key_is(quoted)?
            {
                *sorted = in_name_order;
                return Some(guess);
            }
        }
        self.find(scanner.key()?)
    }

    /// The index of the feature named `key`.
    fn find(&self, key: &[u8]) -> Option<usize> {
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
                {"name":"mean_concavity_x","type":"number"},{"name":"m","type":"number"},{"name":"","type":"number"},
                {"name":"q\"uote","type":"number"}]"#,
        )
        .unwrap();
        let keys = FeatureKeys::new(&schema);
        // The feature, the value after the colon, and whether the key was
        // found in name order.
        let read = |key: &str, previous, mut sorted| {
            let body = format!("\"{key}\" : 1");
            let mut scanner = Scanner::new(body.as_bytes());
            let index = keys.read(&mut scanner, previous, &mut sorted)?;
            Some((index, scanner.number()?, sorted))
        };
        let previous = [None, Some(0), Some(1), Some(2), Some(3), Some(4), Some(9)];
        for (index, spec) in schema.features().iter().enumerate().take(5) {
            for (previous, sorted) in previous.into_iter().flat_map(|p| [(p, false), (p, true)]) {
                let found = read(&spec.name, previous, sorted);
                assert_eq!(found.map(|(i, v, _)| (i, v)), Some((index, 1.0)), "{} after {previous:?}", spec.name);
            }
        }
        // The order a key was found in is the one tried first for the next.
        assert_eq!(read("mean_concavity", Some(3), false), Some((1, 1.0, true)), "\"m\" < \"mean_concavity\"");
        assert_eq!(read("m", Some(4), true), Some((3, 1.0, true)), "\"\" < \"m\"");
        assert_eq!(read("mean_concavity", Some(0), true), Some((1, 1.0, false)), "schema order");
        // A name JSON must escape is never matched raw (its escaped form is left to serde).
        let others = ["mean_concavitx", "mean_concavity_", "mean_per", "M", "mean_perimeter ", "\u{e9}", "q\"uote"];
        for other in others {
            for previous in previous {
                assert_eq!(read(other, previous, false), None, "{other}");
                assert_eq!(read(other, previous, true), None, "{other}");
            }
        }
        let mut no_colon = Scanner::new(br#""m" 1"#);
        assert_eq!(keys.read(&mut no_colon, Some(2), &mut false), None);
    }
}
