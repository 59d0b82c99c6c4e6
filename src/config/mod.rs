//! Connection configuration: types, URL parsing and the environment. No I/O.

mod addr;
mod connection;
mod duration;
mod env;
mod limits;
mod percent;
mod secret;
mod tls;
mod url;

pub use addr::{Addr, Protocol};
pub use connection::ConnectionConfig;
pub use secret::Secret;
pub use tls::TlsConfig;

/// A parse result whose error is a plain message (wrapped into `Error::config` by callers).
type Msg<T> = std::result::Result<T, String>;
