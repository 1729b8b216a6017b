//! Reading a CSV data file column by column without holding it as text: each
//! record is split into one reused buffer, and each number parsed straight
//! from its bytes. Values follow the trainer's rules: trimmed, required, finite.

use std::path::{Path, PathBuf};

use crate::artifact::Bins;
use crate::stats::{DecimalShape, ShapeOfColumn};

use super::csv_records::{CsvRecords, Fields, Next, Source};
use super::error::CompareError;
use super::number::parse_cell;
use super::plain_line::PlainLine;

/// The numeric columns read from a data file, in the order asked for.
pub struct DataColumns {
    pub values: Vec<Vec<f64>>,
    /// Per column, its shape when all of it was plain decimal text.
    pub shapes: Vec<Option<DecimalShape>>,
    pub rows: u64,
}

/// A CSV file opened with its header read.
pub struct CsvData {
    path: PathBuf,
    records: CsvRecords,
    header: Vec<String>,
}

impl CsvData {
    /// Reads the header of CSV text from `source`; `path` names it in errors.
    pub fn read_header(path: &Path, source: Source) -> Result<Self, CompareError> {
        let malformed = |reason: String| CompareError::MalformedCsv { path: path.to_path_buf(), reason };
        let mut records = CsvRecords::new(source);
        let mut fields = Fields::default();
        if !records.next_record(&mut fields).map_err(malformed)? {
            return Err(CompareError::NoRows { path: path.to_path_buf() });
        }
        let header = fields
            .iter()
            .map(|name| std::str::from_utf8(name).map(|name| name.trim().to_string()))
            .collect::<Result<_, _>>()
            .map_err(|_| malformed("the header is not UTF-8".into()))?;
        Ok(CsvData { path: path.to_path_buf(), records, header })
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The position of each named column, or an error naming the first one missing.
    fn positions(&self, names: &[String]) -> Result<Vec<usize>, CompareError> {
        names
            .iter()
            .map(|name| {
                self.header.iter().position(|h| h == name).ok_or_else(|| CompareError::UnknownFeature {
                    name: name.clone(),
                    which: "the current data",
                    available: format!("columns {:?}", self.header),
                })
            })
            .collect()
    }

    /// Reads the named columns as numbers. `hint` ends the message of a
    /// non-numeric value (e.g. how to choose other columns).
    pub fn read_columns(mut self, names: &[String], hint: &'static str) -> Result<DataColumns, CompareError> {
        let positions = self.positions(names)?;
        let mut values: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        let mut shapes = vec![ShapeOfColumn::default(); names.len()];
        let mut plain = PlainLine::new(self.header.len(), &positions);
        let rows = self.for_each_record(|mut record| {
            if let Some(line) = record.line
                && plain.parse(line)
            {
                for ((position, column), shape) in positions.iter().zip(values.iter_mut()).zip(shapes.iter_mut()) {
                    let number = plain.number(*position).unwrap_or_default();
                    shape.see(number.value, Some(number.decimals));
                    column.push(number.value);
                }
                return Ok(());
            }
            let (row, path) = (record.row, record.path);
            let fields = record.fields()?;
            let columns = positions.iter().zip(values.iter_mut()).zip(shapes.iter_mut()).zip(names);
            for (((position, column), shape), name) in columns {
                let (value, decimals) = parse_number(fields.get(*position), row, path, name, hint)?;
                shape.see(value, decimals);
                column.push(value);
            }
            Ok(())
        })?;
        Ok(DataColumns { values, shapes: shapes.iter().map(ShapeOfColumn::shape).collect(), rows })
    }

    /// Counts the named columns into the given bins, one record at a time.
    pub fn bin_columns(mut self, columns: &[(String, &Bins)]) -> Result<(Vec<Vec<u64>>, u64), CompareError> {
        let names: Vec<String> = columns.iter().map(|(name, _)| name.clone()).collect();
        let positions = self.positions(&names)?;
        let mut counts: Vec<Vec<u64>> = columns.iter().map(|(_, bins)| vec![0; bins.len()]).collect();
        let rows = self.for_each_record(|mut record| {
            let (row, path) = (record.row, record.path);
            let fields = record.fields()?;
            for ((position, (name, bins)), counts) in positions.iter().zip(columns).zip(counts.iter_mut()) {
                let field = fields.get(*position);
                let index = match bins {
                    Bins::Number { .. } => bins.number_index(parse_number(field, row, path, name, "")?.0),
                    Bins::Category { .. } => bins.category_index(parse_text(field, row, path, name)?),
                };
                if let Some(count) = index.and_then(|i| counts.get_mut(i)) {
                    *count += 1;
                }
            }
            Ok(())
        })?;
        Ok((counts, rows))
    }

    /// Calls `visit` with every data record; returns the number of rows,
    /// which must not be zero.
    fn for_each_record(
        &mut self,
        mut visit: impl FnMut(Record) -> Result<(), CompareError>,
    ) -> Result<u64, CompareError> {
        let malformed = |reason: String| CompareError::MalformedCsv { path: self.path.clone(), reason };
        let mut fields = Fields::default();
        let mut rows = 0u64;
        loop {
            let line = match self.records.next(&mut fields).map_err(malformed)? {
                Next::Line(line) => Some(line),
                Next::Fields => None,
                Next::End => break,
            };
            rows += 1;
            let header_fields = self.header.len();
            visit(Record { line, fields: &mut fields, row: rows, path: &self.path, header_fields })?;
        }
        if rows == 0 {
            return Err(CompareError::NoRows { path: self.path.clone() });
        }
        Ok(rows)
    }
}

/// A data record being visited: its line while it may still be read whole,
/// or its fields.
struct Record<'a> {
    /// The line as written, when it holds no quote and is not split yet.
    line: Option<&'a [u8]>,
    fields: &'a mut Fields,
    /// 1-based.
    row: u64,
    path: &'a Path,
    header_fields: usize,
}

impl Record<'_> {
    /// The record's fields (split from its line if need be), or an error
    /// when they are not as many as the header's.
    fn fields(&mut self) -> Result<&Fields, CompareError> {
        if let Some(line) = self.line.take() {
            self.fields.split(line);
        }
        if self.fields.len() != self.header_fields {
            return Err(CompareError::MalformedCsv {
                path: self.path.to_path_buf(),
                reason: format!(
                    "row {} has {} fields, but the header has {}",
                    self.row,
                    self.fields.len(),
                    self.header_fields
                ),
            });
        }
        Ok(self.fields)
    }
}

fn parse_text<'a>(field: Option<&'a [u8]>, row: u64, path: &Path, column: &str) -> Result<&'a str, CompareError> {
    let bytes = field.unwrap_or_default();
    let text = std::str::from_utf8(bytes).map_err(|_| CompareError::NotNumeric {
        path: path.to_path_buf(),
        column: column.to_string(),
        row,
        value: String::from_utf8_lossy(bytes).into_owned(),
        hint: " (not UTF-8)",
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(CompareError::MissingValue { path: path.to_path_buf(), column: column.to_string(), row });
    }
    Ok(text)
}

/// A finite number, as the trainer accepts it, and its decimals when it was
/// a plain decimal ([`parse_cell`]).
fn parse_number(
    field: Option<&[u8]>,
    row: u64,
    path: &Path,
    column: &str,
    hint: &'static str,
) -> Result<(f64, Option<usize>), CompareError> {
    let bytes = field.unwrap_or_default().trim_ascii();
    if let Some(parsed) = parse_cell(bytes).filter(|(value, _)| value.is_finite()) {
        return Ok(parsed);
    }
    // Not a number (or one with Unicode spaces around it): the full path, for the message.
    let text = parse_text(field, row, path, column)?;
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok((value, None)),
        _ => Err(CompareError::NotNumeric {
            path: path.to_path_buf(),
            column: column.to_string(),
            row,
            value: text.to_string(),
            hint,
        }),
    }
}
