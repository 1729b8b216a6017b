//! The records of a CSV file, split by hand while its lines hold no quote:
//! the commonest data file is numbers and commas, and the `csv` crate's
//! general state machine was a third of `trainloop drift compare`. Such lines
//! mean the same to both (a record ends at `\n`, `\r` or `\r\n`, empty lines
//! are skipped, a UTF-8 BOM at the start is dropped, every comma splits), and
//! from the first line holding a quote on, the `csv` crate reads the rest.

use std::io::{Cursor, Read};

/// Read buffer: large enough that reading costs a few syscalls per megabyte.
const READ_BUFFER: usize = 1 << 20;

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// What the file is read from: a local file or an object already in memory.
pub type Source = Box<dyn Read + Send>;

/// One record's fields, kept in buffers reused from record to record.
#[derive(Default)]
pub struct Fields {
    bytes: Vec<u8>,
    /// Where each field starts and ends in `bytes`.
    spans: Vec<(usize, usize)>,
}

impl Fields {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let (start, end) = *self.spans.get(index)?;
        self.bytes.get(start..end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|index| self.get(index))
    }

    /// Splits a line without quotes at every comma: the line is copied whole
    /// (one copy, not one per field) and the fields are its stretches between commas.
    pub fn split(&mut self, line: &[u8]) {
        self.bytes.clear();
        self.bytes.extend_from_slice(line);
        self.spans.clear();
        let mut start = 0;
        for comma in memchr::memchr_iter(b',', line) {
            self.spans.push((start, comma));
            start = comma + 1;
        }
        self.spans.push((start, line.len()));
    }

    fn copy(&mut self, record: &csv::ByteRecord) {
        self.bytes.clear();
        self.spans.clear();
        for field in record {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(field);
            self.spans.push((start, self.bytes.len()));
        }
    }
}

/// The bytes a reader had not read yet, then the rest of its source.
type Rest = std::io::Chain<Cursor<Vec<u8>>, Source>;

/// Reads records one at a time.
pub struct CsvRecords {
    lines: Lines,
    /// From the first line holding a quote on (boxed: it is large and rarely there).
    by_csv_crate: Option<Box<csv::Reader<Rest>>>,
}

/// What [`CsvRecords::next`] read.
pub enum Next<'a> {
    /// A line without quotes, as written: its fields are its stretches between commas.
    Line(&'a [u8]),
    /// A record the csv crate read, now in the caller's fields.
    Fields,
    End,
}

impl CsvRecords {
    pub fn new(source: Source) -> Self {
        CsvRecords { lines: Lines::new(source), by_csv_crate: None }
    }

    /// Reads the next record into `fields`; `false` at the end of the file.
    pub fn next_record(&mut self, fields: &mut Fields) -> Result<bool, String> {
        Ok(match self.next(fields)? {
            Next::Line(line) => {
                fields.split(line);
                true
            }
            Next::Fields => true,
            Next::End => false,
        })
    }

    /// The next record: a line not yet split (so that a caller who can read
    /// it whole need not), or one the csv crate read into `fields`.
    pub fn next(&mut self, fields: &mut Fields) -> Result<Next<'_>, String> {
        loop {
            if let Some(reader) = &mut self.by_csv_crate {
                let mut record = csv::ByteRecord::new();
                if !reader.read_byte_record(&mut record).map_err(|e| e.to_string())? {
                    return Ok(Next::End);
                }
                fields.copy(&record);
                return Ok(Next::Fields);
            }
            match self.lines.next_line().map_err(|e| e.to_string())? {
                Line::Plain(range) => return Ok(Next::Line(&self.lines.buffer[range])),
                Line::End => return Ok(Next::End),
                Line::Quoted => {
                    let reader = csv::ReaderBuilder::new()
                        .has_headers(false)
                        // The caller checks the number of fields against the header.
                        .flexible(true)
                        .buffer_capacity(READ_BUFFER)
                        .from_reader(self.lines.take_rest());
                    self.by_csv_crate = Some(Box::new(reader));
                }
            }
        }
    }
}

enum Line {
    /// Where a non-empty line without a quote is in the buffer, without its terminator.
    Plain(std::ops::Range<usize>),
    /// The next line holds a quote: the `csv` crate must read it.
    Quoted,
    End,
}

/// The non-empty lines of a source, through one buffer.
struct Lines {
    source: Source,
    buffer: Vec<u8>,
    /// The unread bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
    at_end_of_source: bool,
    at_start_of_file: bool,
}

impl Lines {
    fn new(source: Source) -> Self {
        Lines {
            source,
            buffer: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            at_end_of_source: false,
            at_start_of_file: true,
        }
    }

    fn next_line(&mut self) -> std::io::Result<Line> {
        loop {
            if self.at_start_of_file && (self.end - self.start >= UTF8_BOM.len() || self.at_end_of_source) {
                self.at_start_of_file = false;
                if self.buffer[self.start..self.end].starts_with(UTF8_BOM) {
                    self.start += UTF8_BOM.len();
                }
            }
            if !self.at_start_of_file {
                let unread = &self.buffer[self.start..self.end];
                let empty = unread.iter().take_while(|b| matches!(b, b'\n' | b'\r')).count();
                self.start += empty;
                let unread = &self.buffer[self.start..self.end];
                let length = match memchr::memchr2(b'\n', b'\r', unread) {
                    Some(length) => Some(length),
                    None if self.at_end_of_source => Some(unread.len()),
                    None => None,
                };
                if let Some(length) = length {
                    if length == 0 {
                        return Ok(Line::End);
                    }
                    if memchr::memchr(b'"', &unread[..length]).is_some() {
                        return Ok(Line::Quoted);
                    }
                    let (start, end) = (self.start, self.start + length);
                    self.start = end;
                    return Ok(Line::Plain(start..end));
                }
            }
            self.fill()?;
        }
    }

    /// Keeps the unread bytes, growing the buffer when one line fills it,
    /// and reads more after them.
    fn fill(&mut self) -> std::io::Result<()> {
        self.buffer.copy_within(self.start..self.end, 0);
        (self.end, self.start) = (self.end - self.start, 0);
        if self.end == self.buffer.len() {
            self.buffer.resize(self.buffer.len() * 2, 0);
        }
        let read = loop {
            match self.source.read(&mut self.buffer[self.end..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        self.end += read;
        self.at_end_of_source = read == 0;
        Ok(())
    }

    /// The unread bytes and the rest of the source, taken away.
    fn take_rest(&mut self) -> Rest {
        let unread = self.buffer[self.start..self.end].to_vec();
        self.start = self.end;
        let source = std::mem::replace(&mut self.source, Box::new(std::io::empty()));
        Cursor::new(unread).chain(source)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn by_hand(text: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, String> {
        let mut records = CsvRecords::new(Box::new(Cursor::new(text.to_vec())));
        let mut fields = Fields::default();
        let mut all = Vec::new();
        while records.next_record(&mut fields)? {
            all.push(fields.iter().map(<[u8]>::to_vec).collect());
        }
        Ok(all)
    }

    fn by_csv_crate(text: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text);
        reader.byte_records().map(|r| r.unwrap().iter().map(<[u8]>::to_vec).collect()).collect()
    }

    #[test]
    fn reads_terminators_empty_lines_and_a_bom_as_the_csv_crate() {
        for text in [
            &b"a,b\n1,2\n"[..],
            b"\xef\xbb\xbfa,b\r\n1,2",
            b"\n\na,b\r\r\n,\n 1 , 2 \n\n",
            b"a,b\n1,\"2,3\"\n4,5\n",
            b"\"a\",b\n1,2\n",
            b"",
            b"\xef\xbb",
        ] {
            assert_eq!(by_hand(text).unwrap(), by_csv_crate(text), "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_read_whole() {
        let text = format!("{}\n1\n", "x".repeat(READ_BUFFER * 2 + 7));
        assert_eq!(by_hand(text.as_bytes()).unwrap(), by_csv_crate(text.as_bytes()));
    }

    proptest! {
        #[test]
        fn any_text_of_commas_quotes_and_terminators_splits_as_the_csv_crate(text in "[ab1,\"\r\n ]{0,80}") {
            prop_assert_eq!(by_hand(text.as_bytes()).unwrap(), by_csv_crate(text.as_bytes()));
        }
    }
}
