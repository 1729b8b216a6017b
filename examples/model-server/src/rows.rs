//! Checked rows of a request, in schema order, kept flat: one buffer per
//! request instead of one per row, and that one reused: a dropped `Rows`
//! gives its buffer back to its thread for the next request.

use std::cell::Cell;

use trainloop_contract::FeatureValue;

thread_local! {
    static SPARE: Cell<Vec<FeatureValue>> = const { Cell::new(Vec::new()) };
}

/// Buffers of more values than this are not kept: a large batch's should not
/// stay allocated on every worker thread.
const KEPT_VALUES: usize = 4096;

/// An empty buffer for a request's values: the last one a `Rows` on this
/// thread gave back, if any.
pub fn values_buffer() -> Vec<FeatureValue> {
    SPARE.try_with(Cell::take).unwrap_or_default()
}

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

impl Drop for Rows {
    fn drop(&mut self) {
        let mut values = std::mem::take(&mut self.values);
        if values.capacity() <= KEPT_VALUES {
            values.clear();
            // A thread that is ending drops it instead.
            let _ = SPARE.try_with(|spare| spare.set(values));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_is_handed_out_again_empty_unless_it_is_large() {
        let mut values = values_buffer();
        values.push(FeatureValue::Category("a".into()));
        let address = values.as_ptr();
        drop(Rows { width: 1, values });
        let again = values_buffer();
        assert_eq!((again.as_ptr(), again.len()), (address, 0));
        drop(Rows { width: 1, values: Vec::with_capacity(KEPT_VALUES + 1) });
        assert_eq!(values_buffer().capacity(), 0);
    }
}
