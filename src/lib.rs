//! # valkit
//!
//! A synchronous, dependency-light Valkey/Redis toolkit with its own RESP2/RESP3 client.
//! Blocking I/O all the way down: no async runtime.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod commands;
mod error;
mod script;

pub mod cmd;
pub mod config;
pub mod resp;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use cmd::{cmd, pipe, Blocking, Cmd, Execute, FromValue, Pipeline, ToArgs};
pub use commands::{
    Commands, Condition, Expiry, GetExExpiry, Info, KeyType, ListEnd, ScanIter, ScanOptions,
    ScoreBound, ScoreUpdate, SetOptions, Ttl, ZAddOptions, ZRangeBy, ZRangeOptions,
};
pub use config::{Addr, ConnectionConfig, Protocol, Secret, TlsConfig};
pub use error::{Error, ErrorKind, Result, ServerError, ServerErrorKind};
pub use resp::Value;
pub use script::{Script, ScriptInvocation};
