//! Buffers a request needs only while it is handled, kept per thread and
//! reused, so that a prediction does not allocate them anew each time.

use std::cell::Cell;
use std::thread::LocalKey;

use axum::body::Bytes;

use crate::error::ApiError;

/// Runs `f` on this thread's `T` (cleared by `f` as it needs). The buffer is
/// taken out while `f` runs: a nested call, or a thread that is ending, gets
/// a new one.
pub fn with_scratch<T: Default, R>(key: &'static LocalKey<Cell<T>>, f: impl FnOnce(&mut T) -> R) -> R {
    let mut scratch = key.try_with(Cell::take).unwrap_or_default();
    let result = f(&mut scratch);
    // A thread that is ending drops it instead.
    let _ = key.try_with(|cell| cell.set(scratch));
    result
}

thread_local! {
    static ANSWER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Answers larger than this are not kept: a batch answer of megabytes should
/// not stay allocated on every worker thread.
const KEPT_ANSWER: usize = 64 * 1024;

/// The bytes `write` writes, in one allocation of their exact size: written
/// into this thread's buffer, then copied (a `Vec` turned into `Bytes` costs an
/// allocation more when its capacity is larger than its length).
pub fn write_answer(write: impl FnOnce(&mut Vec<u8>) -> Result<(), ApiError>) -> Result<Bytes, ApiError> {
    with_scratch(&ANSWER, |buffer| {
        buffer.clear();
        let written = write(buffer).map(|()| Bytes::copy_from_slice(buffer));
        if buffer.capacity() > KEPT_ANSWER {
            *buffer = Vec::new();
        }
        written
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static NUMBERS: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
    }

    #[test]
    fn the_buffer_is_reused_and_a_nested_call_gets_its_own() {
        let first = with_scratch(&NUMBERS, |numbers| {
            numbers.push(1);
            numbers.as_ptr() as usize
        });
        let (again, nested) = with_scratch(&NUMBERS, |numbers| {
            numbers.push(2);
            let nested = with_scratch(&NUMBERS, |inner| {
                inner.push(3);
                inner.clone()
            });
            (numbers.clone(), nested)
        });
        assert_eq!((again, nested), (vec![1, 2], vec![3]));
        assert_eq!(with_scratch(&NUMBERS, |numbers| numbers.as_ptr() as usize), first);
    }

    #[test]
    fn an_answer_is_copied_out_and_a_large_buffer_is_not_kept() {
        let answer = write_answer(|buffer| {
            buffer.extend_from_slice(b"{}");
            Ok(())
        })
        .unwrap();
        assert_eq!(&answer[..], b"{}");
        let large = write_answer(|buffer| {
            buffer.resize(KEPT_ANSWER + 1, b' ');
            Ok(())
        })
        .unwrap();
        assert_eq!(large.len(), KEPT_ANSWER + 1);
        assert_eq!(with_scratch(&ANSWER, |buffer| buffer.capacity()), 0);
        let failed = write_answer(|_| Err(ApiError::Internal("no".into())));
        assert!(matches!(failed, Err(ApiError::Internal(_))));
    }
}
