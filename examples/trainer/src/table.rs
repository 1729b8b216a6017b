//! The dataset as text: a CSV header and rows, then split into checked feature
//! rows and labels.

use trainloop_contract::{FeatureSchema, FeatureValue};

use crate::error::TrainError;

/// A CSV file as strings, before any schema check.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Feature rows in schema order, with their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub rows: Vec<Vec<FeatureValue>>,
    pub labels: Vec<String>,
}

impl Table {
    pub fn parse_csv(bytes: &[u8]) -> Result<Self, TrainError> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
        let header = reader
            .headers()
            .map_err(|e| TrainError::Csv(e.to_string()))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let rows = reader
            .records()
            .map(|record| {
                record.map(|r| r.iter().map(str::to_string).collect()).map_err(|e| TrainError::Csv(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Table { header, rows })
    }

    /// Checks every row against the schema and pulls out the target column.
    pub fn into_dataset(self, schema: &FeatureSchema, target: &str) -> Result<Dataset, TrainError> {
        let target_error = |reason: String| TrainError::Target { column: target.to_string(), reason };
        let target_index = self
            .header
            .iter()
            .position(|h| h == target)
            .ok_or_else(|| target_error(format!("not in the data; columns are {:?}", self.header)))?;
        if schema.names().any(|name| name == target) {
            return Err(target_error("is also declared as a feature".into()));
        }
        let rows = schema.validate_table(&self.header, &self.rows)?;
        let mut empty_rows = Vec::new();
        let labels: Vec<String> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let label = row.get(target_index).map(|l| l.trim()).unwrap_or("");
                if label.is_empty() {
                    empty_rows.push(i + 1);
                }
                label.to_string()
            })
            .collect();
        if !empty_rows.is_empty() {
            return Err(target_error(format!("missing label in rows {empty_rows:?}")));
        }
        Ok(Dataset { rows, labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> FeatureSchema {
        FeatureSchema::from_json(r#"[{"name":"x","type":"number","min":0}]"#).unwrap()
    }

    #[test]
    fn parses_and_checks_a_csv() {
        let table = Table::parse_csv(b"x,y\n1.5,a\n2,b\n").unwrap();
        let data = table.into_dataset(&schema(), "y").unwrap();
        assert_eq!(data.rows, vec![vec![FeatureValue::Number(1.5)], vec![FeatureValue::Number(2.0)]]);
        assert_eq!(data.labels, vec!["a", "b"]);
    }

    #[test]
    fn names_the_column_and_rows_that_break_the_schema() {
        let table = Table::parse_csv(b"x,y\n1,a\n-2,b\n3,a\n-4,b\n").unwrap();
        let message = table.into_dataset(&schema(), "y").unwrap_err().to_string();
        assert!(message.contains("column \"x\": below min in 2 row(s) (rows 2, 4"), "{message}");
    }

    #[test]
    fn reports_a_missing_target_or_label() {
        let table = Table::parse_csv(b"x,z\n1,a\n").unwrap();
        assert!(table.into_dataset(&schema(), "y").unwrap_err().to_string().contains("\"y\""));
        let table = Table::parse_csv(b"x,y\n1,a\n2,\n").unwrap();
        let message = table.into_dataset(&schema(), "y").unwrap_err().to_string();
        assert!(message.contains("rows [2]"), "{message}");
    }

    #[test]
    fn rejects_ragged_csv() {
        assert!(Table::parse_csv(b"x,y\n1,a,extra\n").is_err());
    }
}
