//! A data input, CSV or Parquet, behind one interface: its columns' names,
//! its numeric columns, and the counts of its columns on given bins.

use crate::artifact::Bins;

use super::csv_data::{CsvData, DataColumns};
use super::error::CompareError;
use super::input::{Content, Format, Input, unreadable};
use super::parquet_data::ParquetData;

pub enum DataFile {
    Csv(CsvData),
    Parquet(ParquetData),
}

impl DataFile {
    /// Opens a data input and reads its header (CSV) or footer (Parquet).
    pub fn open(input: &Input) -> Result<Self, CompareError> {
        if input.format != Format::Parquet {
            return Ok(DataFile::Csv(CsvData::read_header(&input.name, input.source()?)?));
        }
        Ok(DataFile::Parquet(match &input.content {
            Content::Local(path) => {
                ParquetData::open(&input.name, std::fs::File::open(path).map_err(|e| unreadable(&input.name, e))?)?
            }
            Content::Fetched(bytes) => ParquetData::open(&input.name, bytes.clone())?,
        }))
    }

    pub fn header(&self) -> &[String] {
        match self {
            DataFile::Csv(csv) => csv.header(),
            DataFile::Parquet(parquet) => parquet.header(),
        }
    }

    /// Reads the named columns as numbers. `hint` ends the message of a
    /// non-numeric value (e.g. how to choose other columns).
    pub fn read_columns(self, names: &[String], hint: &'static str) -> Result<DataColumns, CompareError> {
        let parquet = match self {
            DataFile::Csv(csv) => return csv.read_columns(names, hint),
            DataFile::Parquet(parquet) => parquet,
        };
        let mut values = Vec::with_capacity(names.len());
        let mut rows = 0;
        for name in names {
            let mut column = Vec::new();
            rows = parquet.for_each_batch(name, hint, |batch| column.extend_from_slice(batch))?;
            values.push(column);
        }
        Ok(DataColumns { shapes: vec![None; values.len()], values, rows })
    }

    /// Counts the named columns into the given bins, and the rows.
    pub fn bin_columns(self, columns: &[(String, &Bins)]) -> Result<(Vec<Vec<u64>>, u64), CompareError> {
        let parquet = match self {
            DataFile::Csv(csv) => return csv.bin_columns(columns),
            DataFile::Parquet(parquet) => parquet,
        };
        let mut all_counts = Vec::with_capacity(columns.len());
        let mut rows = 0;
        for (name, bins) in columns {
            if matches!(bins, Bins::Category { .. }) {
                return Err(CompareError::CategoricalParquet {
                    path: parquet.path().to_path_buf(),
                    column: name.clone(),
                });
            }
            let mut counts = vec![0u64; bins.len()];
            rows = parquet.for_each_batch(name, "", |batch| {
                for value in batch {
                    if let Some(count) = bins.number_index(*value).and_then(|i| counts.get_mut(i)) {
                        *count += 1;
                    }
                }
            })?;
            all_counts.push(counts);
        }
        Ok((all_counts, rows))
    }
}
