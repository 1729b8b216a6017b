//! The declared feature schema, and the checks that training rows and serving
//! requests must both pass (factor 2: explicit feature dependencies).

use std::collections::BTreeSet;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How many offending row numbers a message lists before it says "and N more".
const ROWS_SHOWN: usize = 10;

/// The kind of values a feature takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeatureType {
    /// A real number, optionally bounded by `min` and `max`.
    #[default]
    Number,
    /// One of the listed `values`.
    Category,
}

/// One input feature of the model, checked in training data and in serving requests.
// The same type is a pipeline's `spec.features` item in the CRD, so its schema carries the CRD's
// rules (as schema extensions: this crate links no Kubernetes client). The doc comment above is
// the CRD's description.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "a category feature needs a non-empty values list; a number feature has none",
        "rule": "self.type == 'category' ? has(self.values) && size(self.values) > 0 : !has(self.values)"
    },
    {
        "message": "min and max apply to number features only",
        "rule": "self.type == 'number' || (!has(self.min) && !has(self.max))"
    },
    {
        "message": "min must not exceed max",
        "rule": "!has(self.min) || !has(self.max) || self.min <= self.max"
    }
]))]
pub struct FeatureSpec {
    /// Column name in the data and input name at serving time.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z_][A-Za-z0-9_.-]*$"))]
    pub name: String,
    /// `number` or `category`.
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// Smallest allowed value of a number feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest allowed value of a number feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Allowed values of a category feature.
    // Empty means any value. Named `values` as in the pipeline's `features` (`allowedValues` is
    // read too); the CRD declares it nullable, so a stored `null` reads as empty.
    #[serde(
        default,
        rename = "values",
        alias = "allowedValues",
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "Option<Vec<String>>", extend("x-kubernetes-list-type" = "set"))]
    pub allowed_values: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// The ordered list of features; rows and requests use this order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct FeatureSchema(pub Vec<FeatureSpec>);

/// A checked feature value.
#[derive(Clone, Debug, PartialEq)]
pub enum FeatureValue {
    Number(f64),
    Category(String),
}

/// Why one value breaks its feature's declaration.
#[derive(Clone, Debug, PartialEq)]
pub enum Violation {
    Missing,
    NotANumber(String),
    NotFinite,
    BelowMin { value: f64, min: f64 },
    AboveMax { value: f64, max: f64 },
    NotAString,
    NotAllowed(String),
}

impl Violation {
    /// The kind of violation without its value, to group rows by it.
    fn kind(&self) -> &'static str {
        match self {
            Violation::Missing => "missing value",
            Violation::NotANumber(_) => "not a number",
            Violation::NotFinite => "not a finite number",
            Violation::BelowMin { .. } => "below min",
            Violation::AboveMax { .. } => "above max",
            Violation::NotAString => "not a string",
            Violation::NotAllowed(_) => "value not allowed",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Missing => write!(f, "missing value"),
            Violation::NotANumber(raw) => write!(f, "not a number: {raw:?}"),
            Violation::NotFinite => write!(f, "not a finite number"),
            Violation::BelowMin { value, min } => write!(f, "{value} is below min {min}"),
            Violation::AboveMax { value, max } => write!(f, "{value} is above max {max}"),
            Violation::NotAString => write!(f, "a category must be a string"),
            Violation::NotAllowed(raw) => write!(f, "{raw:?} is not an allowed value"),
        }
    }
}

/// All rows of one column that break the same rule.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnViolation {
    pub column: String,
    /// The first offending value, as an example.
    pub example: Violation,
    /// 1-based data row numbers (the header is not counted).
    pub rows: Vec<usize>,
}

impl fmt::Display for ColumnViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.rows.iter().take(ROWS_SHOWN).map(usize::to_string).collect();
        write!(
            f,
            "column {:?}: {} in {} row(s) (rows {}",
            self.column,
            self.example.kind(),
            self.rows.len(),
            shown.join(", ")
        )?;
        if self.rows.len() > ROWS_SHOWN {
            write!(f, " and {} more", self.rows.len() - ROWS_SHOWN)?;
        }
        write!(f, "; e.g. {})", self.example)
    }
}

/// Why a table or a request does not match the schema.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SchemaError {
    #[error("the schema declares no features")]
    Empty,
    #[error("the schema declares feature {0:?} twice")]
    DuplicateFeature(String),
    #[error("feature {feature:?}: {reason}")]
    InvalidSpec { feature: String, reason: String },
    #[error("missing column(s) {missing:?}; columns present but not declared: {undeclared:?}")]
    MissingColumns { missing: Vec<String>, undeclared: Vec<String> },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidValues(Vec<ColumnViolation>),
    #[error("feature {feature:?}: {violation}")]
    InvalidFeature { feature: String, violation: Violation },
}

impl FeatureSpec {
    /// Checks a raw text cell (a CSV field).
    pub fn parse_text(&self, raw: &str) -> Result<FeatureValue, Violation> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Violation::Missing);
        }
        match self.kind {
            FeatureType::Number => {
                let value: f64 = raw.parse().map_err(|_| Violation::NotANumber(raw.to_string()))?;
                self.check_number(value)
            }
            FeatureType::Category => self.check_category(raw),
        }
    }

    /// Checks a JSON value from a request: a number for numbers, a string for categories.
    pub fn parse_json(&self, value: &serde_json::Value) -> Result<FeatureValue, Violation> {
        match (self.kind, value) {
            (_, serde_json::Value::Null) => Err(Violation::Missing),
            (FeatureType::Number, serde_json::Value::Number(n)) => {
                self.check_number(n.as_f64().ok_or(Violation::NotFinite)?)
            }
            (FeatureType::Number, other) => Err(Violation::NotANumber(other.to_string())),
            (FeatureType::Category, serde_json::Value::String(s)) => self.check_category(s),
            (FeatureType::Category, _) => Err(Violation::NotAString),
        }
    }

    /// Checks a number read from a request (for callers that read requests without serde_json).
    pub fn check_number(&self, value: f64) -> Result<FeatureValue, Violation> {
        if !value.is_finite() {
            return Err(Violation::NotFinite);
        }
        if let Some(min) = self.min.filter(|min| value < *min) {
            return Err(Violation::BelowMin { value, min });
        }
        if let Some(max) = self.max.filter(|max| value > *max) {
            return Err(Violation::AboveMax { value, max });
        }
        Ok(FeatureValue::Number(value))
    }

    /// Checks a category read from a request (for callers that read requests without serde_json).
    pub fn check_category(&self, value: &str) -> Result<FeatureValue, Violation> {
        if !self.allowed_values.is_empty() && !self.allowed_values.iter().any(|v| v == value) {
            return Err(Violation::NotAllowed(value.to_string()));
        }
        Ok(FeatureValue::Category(value.to_string()))
    }
}

impl FeatureSchema {
    /// Parses a schema from JSON and checks that it is usable.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let schema: FeatureSchema = serde_json::from_str(text).map_err(|e| e.to_string())?;
        schema.check().map_err(|e| e.to_string())?;
        Ok(schema)
    }

    /// Rejects schemas no data could satisfy: empty, duplicate names, min > max.
    pub fn check(&self) -> Result<(), SchemaError> {
        if self.0.is_empty() {
            return Err(SchemaError::Empty);
        }
        let mut seen = BTreeSet::new();
        for spec in &self.0 {
            if !seen.insert(spec.name.as_str()) {
                return Err(SchemaError::DuplicateFeature(spec.name.clone()));
            }
            if let (Some(min), Some(max)) = (spec.min, spec.max)
                && min > max
            {
                return Err(SchemaError::InvalidSpec {
                    feature: spec.name.clone(),
                    reason: format!("min {min} is above max {max}"),
                });
            }
        }
        Ok(())
    }

    pub fn features(&self) -> &[FeatureSpec] {
        &self.0
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|f| f.name.as_str())
    }

    /// Checks a whole text table against the schema and returns the rows in
    /// schema order. Every violation is collected, grouped by column and rule,
    /// so one failed run tells the user everything to fix.
    pub fn validate_table<H: AsRef<str>, R: AsRef<str>>(
        &self,
        header: &[H],
        rows: &[Vec<R>],
    ) -> Result<Vec<Vec<FeatureValue>>, SchemaError> {
        let positions = self.column_positions(header)?;
        let mut violations: Vec<ColumnViolation> = Vec::new();
        let mut table = Vec::with_capacity(rows.len());
        for (row_index, row) in rows.iter().enumerate() {
            let mut values = Vec::with_capacity(self.0.len());
            for (spec, &position) in self.0.iter().zip(&positions) {
                let raw = row.get(position).map(AsRef::as_ref).unwrap_or("");
                match spec.parse_text(raw) {
                    Ok(value) => values.push(value),
                    Err(violation) => record(&mut violations, &spec.name, violation, row_index + 1),
                }
            }
            table.push(values);
        }
        if violations.is_empty() { Ok(table) } else { Err(SchemaError::InvalidValues(violations)) }
    }

    /// Checks one request row given as JSON values in schema order.
    pub fn validate_values(&self, values: &[&serde_json::Value]) -> Result<Vec<FeatureValue>, SchemaError> {
        self.0
            .iter()
            .zip(values)
            .map(|(spec, value)| {
                spec.parse_json(value)
                    .map_err(|violation| SchemaError::InvalidFeature { feature: spec.name.clone(), violation })
            })
            .collect()
    }

    /// Checks one request row given as a JSON object keyed by feature name.
    /// Extra keys are ignored, as clients often send ids along.
    pub fn validate_object(
        &self,
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<FeatureValue>, SchemaError> {
        let values: Vec<&serde_json::Value> =
            self.0.iter().map(|spec| object.get(&spec.name).unwrap_or(&serde_json::Value::Null)).collect();
        self.validate_values(&values)
    }

    fn column_positions<H: AsRef<str>>(&self, header: &[H]) -> Result<Vec<usize>, SchemaError> {
        let header: Vec<&str> = header.iter().map(|h| h.as_ref().trim()).collect();
        let mut positions = Vec::with_capacity(self.0.len());
        let mut missing = Vec::new();
        for spec in &self.0 {
            match header.iter().position(|h| *h == spec.name) {
                Some(position) => positions.push(position),
                None => missing.push(spec.name.clone()),
            }
        }
        if missing.is_empty() {
            return Ok(positions);
        }
        let undeclared =
            header.iter().filter(|h| !self.0.iter().any(|spec| spec.name == **h)).map(|h| h.to_string()).collect();
        Err(SchemaError::MissingColumns { missing, undeclared })
    }
}

fn record(violations: &mut Vec<ColumnViolation>, column: &str, violation: Violation, row: usize) {
    match violations.iter_mut().find(|v| v.column == column && v.example.kind() == violation.kind()) {
        Some(existing) => existing.rows.push(row),
        None => violations.push(ColumnViolation { column: column.to_string(), example: violation, rows: vec![row] }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> FeatureSchema {
        FeatureSchema::from_json(
            r#"[{"name":"age","type":"number","min":0,"max":120},
                {"name":"plan","type":"category","values":["basic","pro"]}]"#,
        )
        .unwrap()
    }

    fn table(rows: &[[&str; 2]]) -> Vec<Vec<String>> {
        rows.iter().map(|r| r.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn a_pipelines_feature_reads_with_null_or_absent_values_as_any_value() {
        for item in
            [json!({"name": "plan", "type": "category", "values": null}), json!({"name": "plan", "type": "category"})]
        {
            let spec: FeatureSpec = serde_json::from_value(item).unwrap();
            assert!(spec.allowed_values.is_empty());
            assert_eq!(serde_json::to_value(&spec).unwrap(), json!({"name": "plan", "type": "category"}));
        }
    }

    #[test]
    fn accepts_valid_rows_in_schema_order_whatever_the_column_order() {
        let rows = table(&[["pro", "30"], ["basic", "0"]]);
        let values = schema().validate_table(&["plan", "age"], &rows).unwrap();
        assert_eq!(values[0], vec![FeatureValue::Number(30.0), FeatureValue::Category("pro".into())]);
    }

    #[test]
    fn a_renamed_column_is_reported_missing_with_the_undeclared_one() {
        let err = schema().validate_table(&["years", "plan"], &table(&[])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"age\""), "{message}");
        assert!(message.contains("\"years\""), "{message}");
    }

    #[test]
    fn out_of_range_and_mistyped_values_name_the_column_and_rows() {
        let rows = table(&[["10", "pro"], ["200", "pro"], ["x", "gold"], ["300", "basic"]]);
        let err = schema().validate_table(&["age", "plan"], &rows).unwrap_err();
        let SchemaError::InvalidValues(violations) = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(violations.len(), 3);
        assert_eq!(violations[0].column, "age");
        assert_eq!(violations[0].rows, vec![2, 4]);
        assert_eq!(violations[1].rows, vec![3]);
        assert_eq!(violations[2].column, "plan");
        let message = err.to_string();
        assert!(message.contains("column \"age\": above max in 2 row(s) (rows 2, 4"), "{message}");
        assert!(message.contains("\"gold\" is not an allowed value"), "{message}");
    }

    #[test]
    fn long_row_lists_are_cut() {
        let rows: Vec<Vec<String>> = (0..25).map(|_| vec!["-1".to_string(), "pro".to_string()]).collect();
        let message = schema().validate_table(&["age", "plan"], &rows).unwrap_err().to_string();
        assert!(message.contains("and 15 more"), "{message}");
    }

    #[test]
    fn json_requests_are_typed_strictly() {
        let schema = schema();
        let ok = schema.validate_object(json!({"age": 3, "plan": "basic"}).as_object().unwrap());
        assert!(ok.is_ok());
        let err = schema.validate_object(json!({"age": "3", "plan": "basic"}).as_object().unwrap()).unwrap_err();
        assert!(err.to_string().contains("feature \"age\""));
        let err = schema.validate_object(json!({"age": 3}).as_object().unwrap()).unwrap_err();
        assert_eq!(err, SchemaError::InvalidFeature { feature: "plan".into(), violation: Violation::Missing });
    }

    #[test]
    fn reads_the_pipeline_spelling_and_the_long_one() {
        let pipeline = FeatureSchema::from_json(r#"[{"name":"k","type":"category","values":["a"]}]"#).unwrap();
        let long = FeatureSchema::from_json(r#"[{"name":"k","type":"category","allowedValues":["a"]}]"#).unwrap();
        assert_eq!(pipeline, long);
        assert_eq!(pipeline.0[0].allowed_values, vec!["a".to_string()]);
        assert_eq!(serde_json::to_string(&pipeline).unwrap(), r#"[{"name":"k","type":"category","values":["a"]}]"#);
    }

    #[test]
    fn unusable_schemas_are_rejected() {
        assert!(FeatureSchema::from_json("[]").is_err());
        assert!(FeatureSchema::from_json(r#"[{"name":"a","type":"number"},{"name":"a","type":"number"}]"#).is_err());
        assert!(FeatureSchema::from_json(r#"[{"name":"a","type":"number","min":2,"max":1}]"#).is_err());
        assert!(FeatureSchema::from_json(r#"[{"name":"a","type":"text"}]"#).is_err());
    }
}
