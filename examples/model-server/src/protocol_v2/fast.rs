//! The fast path of V2 parsing: reads the plain JSON of an inference request
//! (`id`, `inputs` of `name`, `shape`, `datatype` and `data`) with the strict
//! scanner, numbers straight to `f64`, without `serde_json::Value`s. It
//! answers `None` for anything else (another key, a duplicate, an escape, a
//! `null`, …); serde then decides, as `InferRequest`, and words the error.

use crate::json_scan::{Scalar, Scanner};

pub struct Request<'a> {
    pub id: Option<&'a str>,
    pub inputs: Vec<Tensor<'a>>,
}

pub struct Tensor<'a> {
    pub name: &'a str,
    pub data: Vec<Scalar<'a>>,
}

pub fn parse(body: &[u8]) -> Option<Request<'_>> {
    let mut scanner = Scanner::new(body);
    let (mut id, mut inputs) = (None, None);
    if scanner.open(b'{', b'}')? {
        loop {
            match scanner.key()? {
                b"id" if id.is_none() => id = Some(scanner.string()?),
                b"inputs" if inputs.is_none() => inputs = Some(tensors(&mut scanner)?),
                _ => return None,
            }
            if !scanner.more(b'}')? {
                break;
            }
        }
    }
    scanner.end()?;
    Some(Request { id, inputs: inputs? })
}

fn tensors<'a>(scanner: &mut Scanner<'a>) -> Option<Vec<Tensor<'a>>> {
    let mut tensors: Vec<Tensor> = Vec::new();
    if scanner.open(b'[', b']')? {
        loop {
            // Tensors of one request have one length: size each like the last.
            let expected_rows = tensors.last().map_or(0, |t| t.data.len());
            tensors.push(tensor(scanner, expected_rows)?);
            if !scanner.more(b']')? {
                break;
            }
        }
    }
    Some(tensors)
}

fn tensor<'a>(scanner: &mut Scanner<'a>, expected_rows: usize) -> Option<Tensor<'a>> {
    let (mut name, mut data, mut shape, mut datatype) = (None, None, false, false);
    if scanner.open(b'{', b'}')? {
        loop {
            match scanner.key()? {
                b"name" if name.is_none() => name = Some(scanner.string()?),
                b"data" if data.is_none() => data = Some(elements(scanner, expected_rows, Scanner::scalar)?),
                // Read for validity only, as serde does.
                b"shape" if !shape => {
                    elements(scanner, 1, Scanner::integer)?;
                    shape = true;
                }
                b"datatype" if !datatype => {
                    scanner.string()?;
                    datatype = true;
                }
                _ => return None,
            }
            if !scanner.more(b'}')? {
                break;
            }
        }
    }
    Some(Tensor { name: name?, data: data? })
}

/// An array of about `expected` elements, each read by `element`.
fn elements<'a, T>(
    scanner: &mut Scanner<'a>,
    expected: usize,
    element: impl Fn(&mut Scanner<'a>) -> Option<T>,
) -> Option<Vec<T>> {
    let mut elements = Vec::with_capacity(expected);
    if scanner.open(b'[', b']')? {
        loop {
            elements.push(element(scanner)?);
            if !scanner.more(b']')? {
                break;
            }
        }
    }
    Some(elements)
}
