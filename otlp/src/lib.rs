//! OTLP trace requests on their way in: everything the gateway does to a request before it
//! touches storage.
//!
//! A body is decoded ([`decode`]), its spans validated and bounded ([`validate`], [`limits`]),
//! and the surviving spans grouped per trace ([`split`]). All of it is pure: no IO, no clock,
//! no storage, so the fuzz targets in `fuzz/` can drive exactly this code with arbitrary bytes.

pub mod decode;
mod error;
pub mod limits;
pub mod portable;
pub mod split;
pub mod validate;

pub use error::OtlpError;
