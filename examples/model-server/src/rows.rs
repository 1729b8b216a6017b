//! Checked rows of a request, in schema order, kept flat: one allocation per
//! request instead of one per row.

use trainloop_contract::FeatureValue;

#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Values per row: the number of features.
    pub width: usize,
    /// Row after row, `width` values each.
    pub values: Vec<FeatureValue>,
}

impl Rows {
    pub fn from_rows(width: usize, rows: Vec<Vec<FeatureValue>>) -> Self {
        Rows { width, values: rows.into_iter().flatten().collect() }
    }

    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> std::slice::ChunksExact<'_, FeatureValue> {
        // A width of 0 cannot come from a checked schema; keep chunking defined anyway.
        self.values.chunks_exact(self.width.max(1))
    }

    pub fn row(&self, index: usize) -> Option<&[FeatureValue]> {
        self.iter().nth(index)
    }
}
