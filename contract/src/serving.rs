//! The serving contract's exit codes: a model server that refuses its model exits with one of
//! these, and the operator names the refusal from it (a rollback's reason) instead of guessing it
//! from the server's words.

/// The artifact's bytes do not match `MODEL_DIGEST`.
pub const EXIT_DIGEST_MISMATCH: u8 = 65;
/// The artifact cannot be read or is not a model.
pub const EXIT_MODEL_UNREADABLE: u8 = 66;
