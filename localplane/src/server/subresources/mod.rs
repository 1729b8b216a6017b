//! Subresources beyond `/status` and `/log`: `scale`, `pods/eviction`, `serviceaccounts/token`,
//! and the TokenReview that checks the tokens issued.

pub mod eviction;
pub mod scale;
pub mod tokens;
