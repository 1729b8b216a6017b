//! Feature shifts that simulate drift: `name*1.5` scales a number, `name+3`
//! adds to it, `name=value` sets a number or category on every row.

use std::str::FromStr;

use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq)]
pub enum Shift {
    Scale { feature: String, factor: f64 },
    Add { feature: String, offset: f64 },
    Set { feature: String, value: String },
}

impl FromStr for Shift {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let number = |raw: &str| raw.trim().parse::<f64>().map_err(|_| format!("{raw:?} is not a number in {text:?}"));
        if let Some((feature, factor)) = text.split_once('*') {
            Ok(Shift::Scale { feature: feature.trim().into(), factor: number(factor)? })
        } else if let Some((feature, offset)) = text.split_once('+') {
            Ok(Shift::Add { feature: feature.trim().into(), offset: number(offset)? })
        } else if let Some((feature, value)) = text.split_once('=') {
            Ok(Shift::Set { feature: feature.trim().into(), value: value.trim().into() })
        } else {
            Err(format!("{text:?} is not NAME*FACTOR, NAME+OFFSET or NAME=VALUE"))
        }
    }
}

impl Shift {
    pub fn feature(&self) -> &str {
        match self {
            Shift::Scale { feature, .. } | Shift::Add { feature, .. } | Shift::Set { feature, .. } => feature,
        }
    }

    /// Applies the shift to an instance; a number stays a number.
    pub fn apply(&self, instance: &mut Map<String, Value>) {
        let Some(current) = instance.get_mut(self.feature()) else {
            return;
        };
        let shifted = match (self, current.as_f64()) {
            (Shift::Scale { factor, .. }, Some(x)) => Value::from(x * factor),
            (Shift::Add { offset, .. }, Some(x)) => Value::from(x + offset),
            (Shift::Set { value, .. }, Some(_)) => {
                value.parse::<f64>().map_or_else(|_| Value::from(value.clone()), Value::from)
            }
            (Shift::Set { value, .. }, None) => Value::from(value.clone()),
            // Scaling a category means nothing; leave it.
            (_, None) => return,
        };
        *current = shifted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            "mean_radius*1.5".parse::<Shift>().unwrap(),
            Shift::Scale { feature: "mean_radius".into(), factor: 1.5 }
        );
        assert_eq!("x+2".parse::<Shift>().unwrap(), Shift::Add { feature: "x".into(), offset: 2.0 });
        assert_eq!("plan=pro".parse::<Shift>().unwrap(), Shift::Set { feature: "plan".into(), value: "pro".into() });
        assert!("x*big".parse::<Shift>().is_err());
        assert!("x".parse::<Shift>().is_err());
    }

    #[test]
    fn shifts_numbers_and_sets_categories() {
        let mut instance = json!({"x": 2.0, "plan": "basic"}).as_object().unwrap().clone();
        Shift::Scale { feature: "x".into(), factor: 1.5 }.apply(&mut instance);
        Shift::Set { feature: "plan".into(), value: "pro".into() }.apply(&mut instance);
        Shift::Scale { feature: "plan".into(), factor: 2.0 }.apply(&mut instance);
        assert_eq!(Value::Object(instance), json!({"x": 3.0, "plan": "pro"}));
    }
}
