//! Reading the numeric columns of a Parquet file with the `parquet` crate's
//! column readers (no Arrow): DOUBLE, FLOAT, INT32 and INT64 columns, a batch
//! at a time. Values follow the trainer's rules for CSV: required (no nulls)
//! and finite.

use std::path::{Path, PathBuf};

use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, FileReader, SerializedFileReader};

use super::error::CompareError;

/// Values decoded per call: a few pages, and a bounded buffer whatever the rows.
const BATCH: usize = 64 * 1024;

/// A Parquet file opened with its footer (schema and row groups) read.
pub struct ParquetData {
    path: PathBuf,
    reader: Box<dyn FileReader>,
    header: Vec<String>,
}

impl ParquetData {
    /// Opens Parquet from `source` (a local file or bytes in memory); `path` names it in errors.
    pub fn open<R: ChunkReader + 'static>(path: &Path, source: R) -> Result<Self, CompareError> {
        let reader = SerializedFileReader::new(source).map_err(|e| malformed(path, e))?;
        let header =
            reader.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.path().string()).collect();
        Ok(ParquetData { path: path.to_path_buf(), reader: Box::new(reader), header })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The leaf columns' names (dotted paths for nested ones).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Calls `visit` with the values of column `name`, batch by batch in row
    /// order; returns the number of rows, which must not be zero. `hint` ends
    /// the message of a column that does not hold numbers.
    pub fn for_each_batch(
        &self,
        name: &str,
        hint: &'static str,
        mut visit: impl FnMut(&[f64]),
    ) -> Result<u64, CompareError> {
        let column = self.header.iter().position(|h| h == name).ok_or_else(|| CompareError::UnknownFeature {
            name: name.to_string(),
            which: "the current data",
            available: format!("columns {:?}", self.header),
        })?;
        let most_defined = self.reader.metadata().file_metadata().schema_descr().column(column).max_def_level();
        let mut batch =
            Batch { path: &self.path, column: name, most_defined, rows_before: 0, values: Vec::with_capacity(BATCH) };
        for group in 0..self.reader.num_row_groups() {
            let group = self.reader.get_row_group(group).map_err(|e| malformed(&self.path, e))?;
            let reader = group.get_column_reader(column).map_err(|e| malformed(&self.path, e))?;
            match reader {
                ColumnReader::DoubleColumnReader(reader) => batch.read_all(reader, |v| *v, &mut visit)?,
                ColumnReader::FloatColumnReader(reader) => batch.read_all(reader, |v| f64::from(*v), &mut visit)?,
                ColumnReader::Int32ColumnReader(reader) => batch.read_all(reader, |v| f64::from(*v), &mut visit)?,
                // As the CSV reader and NumPy read a 64-bit integer: the nearest double.
                ColumnReader::Int64ColumnReader(reader) => batch.read_all(reader, |v| *v as f64, &mut visit)?,
                other => {
                    return Err(CompareError::NotNumericColumn {
                        path: self.path.clone(),
                        column: name.to_string(),
                        kind: physical_type_name(&other),
                        hint,
                    });
                }
            }
        }
        if batch.rows_before == 0 {
            return Err(CompareError::NoRows { path: self.path.clone() });
        }
        Ok(batch.rows_before)
    }
}

/// Where the reading of one column stands, and its reused buffer.
struct Batch<'a> {
    path: &'a Path,
    column: &'a str,
    /// The definition level of a present value: any lower level is a null.
    most_defined: i16,
    rows_before: u64,
    values: Vec<f64>,
}

impl Batch<'_> {
    /// Reads one row group's column to its end.
    fn read_all<T: DataType>(
        &mut self,
        mut reader: ColumnReaderImpl<T>,
        to_f64: impl Fn(&T::T) -> f64,
        visit: &mut impl FnMut(&[f64]),
    ) -> Result<(), CompareError> {
        let mut raw: Vec<T::T> = Vec::with_capacity(BATCH);
        let mut levels: Vec<i16> = Vec::with_capacity(BATCH);
        loop {
            raw.clear();
            levels.clear();
            let (records, values, _) =
                reader.read_records(BATCH, Some(&mut levels), None, &mut raw).map_err(|e| malformed(self.path, e))?;
            if records == 0 {
                return Ok(());
            }
            if values < records {
                let null = levels.iter().position(|level| *level < self.most_defined).unwrap_or(0);
                return Err(CompareError::MissingValue {
                    path: self.path.to_path_buf(),
                    column: self.column.to_string(),
                    row: self.rows_before + null as u64 + 1,
                });
            }
            self.values.clear();
            self.values.extend(raw.iter().map(&to_f64));
            if let Some(bad) = self.values.iter().position(|v| !v.is_finite()) {
                return Err(CompareError::NotNumeric {
                    path: self.path.to_path_buf(),
                    column: self.column.to_string(),
                    row: self.rows_before + bad as u64 + 1,
                    value: self.values[bad].to_string(),
                    hint: "",
                });
            }
            visit(&self.values);
            self.rows_before += records as u64;
        }
    }
}

fn malformed(path: &Path, error: ParquetError) -> CompareError {
    CompareError::MalformedParquet { path: path.to_path_buf(), reason: error.to_string() }
}

fn physical_type_name(reader: &ColumnReader) -> &'static str {
    match reader {
        ColumnReader::BoolColumnReader(_) => "BOOLEAN",
        ColumnReader::Int32ColumnReader(_) => "INT32",
        ColumnReader::Int64ColumnReader(_) => "INT64",
        ColumnReader::Int96ColumnReader(_) => "INT96",
        ColumnReader::FloatColumnReader(_) => "FLOAT",
        ColumnReader::DoubleColumnReader(_) => "DOUBLE",
        ColumnReader::ByteArrayColumnReader(_) => "BYTE_ARRAY",
        ColumnReader::FixedLenByteArrayColumnReader(_) => "FIXED_LEN_BYTE_ARRAY",
    }
}
