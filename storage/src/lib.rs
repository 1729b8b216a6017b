//! Data and artifacts where clusters keep them: one way to read, write and version an object at
//! an `s3://`, `gs://`, `az://`, `file://` or (read-only) `http(s)://` URI, shared by the
//! operator, the example trainer and the example model server.
//!
//! - [`location`]: which store and which object a URI names;
//! - [`config`]: credentials and endpoints from the standard environment variables, never shown;
//! - [`store`]: the `object_store` client for a location;
//! - [`object`]: read, atomic write and the version (ETag) of one object;
//! - [`error`]: what went wrong, in words a person can act on.

pub mod config;
pub mod error;
pub mod location;
pub mod object;
pub mod store;

pub use config::StorageConfig;
pub use error::{Problem, StorageError};
pub use location::{Location, Scheme, child_uri};
pub use object::{blocking, read, version, write};
