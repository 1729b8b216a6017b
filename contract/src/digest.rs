//! Content digests in the `sha256:<hex>` form used by artifacts, data and images: the one place
//! that writes and checks that form.

use std::io;

use sha2::{Digest, Sha256};

const PREFIX: &str = "sha256:";

/// The `sha256:<lowercase hex>` digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("{PREFIX}{}", hex::encode(Sha256::digest(bytes)))
}

/// Whether `digest` is exactly `sha256:` and 64 lowercase hex digits, the form
/// [`sha256_digest`] writes.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest
        .strip_prefix(PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
}

/// The `sha256:<hex>` digest of bytes that arrive in pieces (a file copied through it with
/// `io::copy`, an HTTP body chunk by chunk), never holding them whole.
#[derive(Default)]
pub struct Sha256Stream(Sha256);

impl Sha256Stream {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> String {
        format!("{PREFIX}{}", hex::encode(self.0.finalize()))
    }
}

impl io::Write for Sha256Stream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        assert_eq!(sha256_digest(b""), EMPTY);
        assert_eq!(Sha256Stream::default().finish(), EMPTY);
    }

    #[test]
    fn a_stream_in_pieces_digests_like_the_whole() {
        let mut stream = Sha256Stream::default();
        stream.update(b"hel");
        io::copy(&mut &b"lo"[..], &mut stream).unwrap();
        assert_eq!(stream.finish(), sha256_digest(b"hello"));
    }

    #[test]
    fn only_the_written_form_is_a_digest() {
        assert!(is_sha256_digest(&sha256_digest(b"x")));
        assert!(is_sha256_digest(EMPTY));
        for bad in [
            "",
            "sha256:",
            &EMPTY[..EMPTY.len() - 1],
            &format!("{EMPTY}0"),
            &EMPTY.to_uppercase().replace("SHA256", "sha256"),
            &EMPTY.replace("sha256:", "md5:"),
            &EMPTY.replace('e', "g"),
        ] {
            assert!(!is_sha256_digest(bad), "{bad}");
        }
    }
}
