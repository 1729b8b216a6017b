//! The fast path of V1 parsing: reads the plain JSON of `{"instances": [...]}`
//! straight into checked values with the strict scanner, without building a
//! `serde_json::Value` tree. It answers `None` for anything else (another
//! top-level key, a key that is not a feature, a duplicate, an escape, a
//! value that breaks the schema, …); the tree parser then decides and words
//! the error.

use trainloop_contract::{FeatureSchema, FeatureSpec, FeatureValue};

use crate::json_scan::{Scalar, Scanner};

/// The checked rows, flat in schema order, or `None`.
pub fn parse(schema: &FeatureSchema, body: &[u8]) -> Option<Vec<FeatureValue>> {
    let features = schema.features();
    let mut scanner = Scanner::new(body);
    let mut values = Vec::with_capacity(features.len());
    let mut slots = Vec::with_capacity(features.len());
    if !scanner.open(b'{', b'}')? || scanner.key()? != b"instances" {
        return None;
    }
    if scanner.open(b'[', b']')? {
        loop {
            match scanner.peek()? {
                b'{' => object(&mut scanner, features, &mut slots)?,
                b'[' => array(&mut scanner, features, &mut slots)?,
                _ => return None,
            }
            for (spec, slot) in features.iter().zip(&slots) {
                values.push(checked(spec, (*slot)?)?);
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

fn checked(spec: &FeatureSpec, scalar: Scalar) -> Option<FeatureValue> {
    scalar.check(spec).ok()
}

/// An instance keyed by feature name, into `slots` in schema order.
fn object<'a>(scanner: &mut Scanner<'a>, features: &[FeatureSpec], slots: &mut Vec<Option<Scalar<'a>>>) -> Option<()> {
    slots.clear();
    slots.resize(features.len(), None);
    if !scanner.open(b'{', b'}')? {
        return Some(());
    }
    for expected in 0.. {
        let key = scanner.key()?;
        // Clients mostly send the features in one order: try the next one first.
        let position = match features.get(expected) {
            Some(spec) if spec.name.as_bytes() == key => expected,
            _ => features.iter().position(|spec| spec.name.as_bytes() == key)?,
        };
        let slot = slots.get_mut(position)?;
        if slot.is_some() {
            return None;
        }
        *slot = Some(scanner.scalar()?);
        if !scanner.more(b'}')? {
            break;
        }
    }
    Some(())
}

/// An instance as values in schema order, into `slots`.
fn array<'a>(scanner: &mut Scanner<'a>, features: &[FeatureSpec], slots: &mut Vec<Option<Scalar<'a>>>) -> Option<()> {
    slots.clear();
    if scanner.open(b'[', b']')? {
        loop {
            slots.push(Some(scanner.scalar()?));
            if !scanner.more(b']')? {
                break;
            }
        }
    }
    (slots.len() == features.len()).then_some(())
}
