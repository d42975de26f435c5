//! The one error type of the storage crate.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    /// The database's directory could not be created.
    #[error("cannot create the storage directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another gateway (or another store in this process) has the database open.
    #[error(
        "the storage directory {path} is in use: another gateway holds its LOCK file; stop it \
         or use another directory"
    )]
    InUse { path: PathBuf },
    /// The database could not be opened or created.
    #[error("cannot open RocksDB at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    /// A read, write or delete failed.
    #[error("RocksDB {operation} failed: {source}")]
    Io {
        operation: &'static str,
        #[source]
        source: rocksdb::Error,
    },
    /// A stored key or value does not have the layout this version writes.
    #[error("corrupt {what} in RocksDB: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

impl StorageError {
    pub(crate) fn io(operation: &'static str) -> impl FnOnce(rocksdb::Error) -> Self {
        move |source| Self::Io { operation, source }
    }
}
