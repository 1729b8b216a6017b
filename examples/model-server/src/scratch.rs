//! Buffers a request needs only while it is handled, kept per thread and
//! reused, so that a prediction does not allocate them anew each time.

use std::cell::Cell;
use std::thread::LocalKey;

use bytes::{Bytes, BytesMut};

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
    static ANSWER: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// Room an answer buffer makes when too little is left: a few dozen
/// single-row answers.
const ANSWER_ROOM: usize = 4096;
/// Buffers larger than this are not kept: a batch answer of megabytes should
/// not stay allocated on every worker thread.
const KEPT_ANSWER: usize = 64 * 1024;

/// The bytes `write` writes, split off this thread's answer buffer: answers
/// share its allocation, and once they are all sent and dropped the buffer
/// writes over them (`BytesMut::reserve` reclaims it), so an answer costs no
/// allocation of its own (each would be one, and their churn between the
/// worker threads' heaps had glibc trim and grow a heap on every few requests).
pub fn write_answer(write: impl FnOnce(&mut BytesMut) -> Result<(), ApiError>) -> Result<Bytes, ApiError> {
    with_scratch(&ANSWER, |buffer| {
        if buffer.capacity() < ANSWER_ROOM / 4 {
            buffer.reserve(ANSWER_ROOM);
        }
        let written = write(buffer);
        let answer = buffer.split().freeze();
        if buffer.capacity() > KEPT_ANSWER {
            *buffer = BytesMut::new();
        }
        written.map(|()| answer)
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

    fn answer(text: &[u8]) -> Bytes {
        write_answer(|buffer| {
            buffer.extend_from_slice(text);
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn answers_share_the_buffer_which_writes_over_them_once_they_are_dropped() {
        let first = answer(b"{}");
        let second = answer(b"[1]");
        assert_eq!((&first[..], &second[..]), (&b"{}"[..], &b"[1]"[..]));
        assert_eq!(second.as_ptr(), first.as_ptr().wrapping_add(2), "one allocation");
        let start = first.as_ptr();
        drop((first, second));
        // Answers go on after them until the buffer is short of room; then,
        // all of them dropped, it starts over at the front.
        let over_again = (1..=ANSWER_ROOM).find(|_| answer(b"x").as_ptr() == start);
        assert!(over_again.is_some_and(|n| n > ANSWER_ROOM / 2), "{over_again:?}");
        let failed = write_answer(|buffer| {
            buffer.extend_from_slice(b"half");
            Err(ApiError::Internal("no".into()))
        });
        assert!(matches!(failed, Err(ApiError::Internal(_))));
        assert_eq!(&answer(b"ok")[..], b"ok", "a failed answer leaves nothing behind");
    }

    #[test]
    fn a_large_buffer_is_not_kept() {
        let large = answer(&vec![b' '; 2 * KEPT_ANSWER]);
        assert_eq!(large.len(), 2 * KEPT_ANSWER);
        drop(large);
        assert_eq!(with_scratch(&ANSWER, |buffer| buffer.capacity()), 0);
    }
}
