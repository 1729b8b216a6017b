//! The fast path of V1 parsing: reads the plain JSON of `{"instances": [...]}`
//! straight into checked values with the strict scanner, without building a
//! `serde_json::Value` tree. It answers `None` for anything else (another
//! top-level key, a key that is not a feature, a duplicate, an escape, a
//! value that breaks the schema, …); the tree parser then decides and words
//! the error.

use trainloop_contract::{FeatureSchema, FeatureSpec, FeatureType, FeatureValue};

use super::keys::FeatureKeys;
use crate::json_scan::Scanner;
use crate::rows::values_buffer;

/// The checked rows, flat in schema order, or `None`.
pub fn parse(schema: &FeatureSchema, keys: &FeatureKeys, body: &[u8]) -> Option<Vec<FeatureValue>> {
    let features = schema.features();
    let mut scanner = Scanner::new(body);
    if !scanner.open(b'{', b'}')? || !scanner.key_is(br#""instances""#)? {
        return None;
    }
    let mut values = values_buffer();
    if scanner.open(b'[', b']')? {
        loop {
            match scanner.peek()? {
                b'{' => object(&mut scanner, features, keys, &mut values)?,
                b'[' => array(&mut scanner, features, &mut values)?,
                _ => return None,
            }
            if !scanner.more(b']')? {
                break;
            }
        }
    }
    scanner.eat(b'}')?;
    scanner.end()?;
    Some(values)
}

/// A feature not read yet: no checked value is NaN (checked numbers are finite).
const UNREAD: FeatureValue = FeatureValue::Number(f64::NAN);

fn is_unread(value: &FeatureValue) -> bool {
    matches!(value, FeatureValue::Number(number) if number.is_nan())
}

/// A value of `spec`'s type, checked. One of another type, or out of range,
/// is left to the tree parser, which words the violation.
fn checked(scanner: &mut Scanner, spec: &FeatureSpec) -> Option<FeatureValue> {
    match spec.kind {
        FeatureType::Number => Some(FeatureValue::Number(in_range(scanner.number()?, spec)?)),
        FeatureType::Category => spec.check_category(scanner.string()?).ok(),
    }
}

/// `spec.check_number` for the finite numbers the scanner reads, without
/// building its error (this runs for every cell).
fn in_range(number: f64, spec: &FeatureSpec) -> Option<f64> {
    (!spec.min.is_some_and(|min| number < min) && !spec.max.is_some_and(|max| number > max)).then_some(number)
}

/// An instance keyed by feature name, checked, appended in schema order.
fn object(
    scanner: &mut Scanner,
    features: &[FeatureSpec],
    keys: &FeatureKeys,
    values: &mut Vec<FeatureValue>,
) -> Option<()> {
    let row = values.len();
    values.resize(row + features.len(), UNREAD);
    let slots = &mut values[row..];
    let mut read = 0;
    if scanner.open(b'{', b'}')? {
        let (mut previous, mut sorted) = (None, false);
        loop {
            let position = keys.read(scanner, previous, &mut sorted)?;
            let (spec, slot) = features.get(position).zip(slots.get_mut(position))?;
            if !is_unread(slot) {
                return None;
            }
            match spec.kind {
                // Written in place: returned as an `Option<FeatureValue>`,
                // the value went through memory in pieces and was read back
                // whole, a store-forwarding stall on every cell.
                FeatureType::Number => *slot = FeatureValue::Number(in_range(scanner.number()?, spec)?),
                FeatureType::Category => *slot = checked(scanner, spec)?,
            }
            read += 1;
            previous = Some(position);
            if !scanner.more(b'}')? {
                break;
            }
        }
    }
    // Each key filled an unread slot: all are filled when as many were read.
    (read == features.len()).then_some(())
}

/// An instance as values in schema order, checked, appended.
fn array(scanner: &mut Scanner, features: &[FeatureSpec], values: &mut Vec<FeatureValue>) -> Option<()> {
    let row = values.len();
    if scanner.open(b'[', b']')? {
        loop {
            let spec = features.get(values.len() - row)?;
            values.push(checked(scanner, spec)?);
            if !scanner.more(b']')? {
                break;
            }
        }
    }
    (values.len() - row == features.len()).then_some(())
}
