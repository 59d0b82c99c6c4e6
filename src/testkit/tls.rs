//! Test certificates (made with the `openssl` command) and a stunnel TLS front.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::binaries::{openssl_binary, stunnel_binary};
use super::process::{self, kill_and_wait, Backoff, Watchdog};
use super::tempdir::TempDir;
use super::{free_port, log_tail_of, testkit_error};
use crate::error::Result;

/// A throwaway PKI for TLS tests, valid for 2 days, EC P-256 keys (PKCS#8 PEM):
///
/// * a CA (self-signed, `basicConstraints=critical,CA:TRUE`),
/// * a server certificate signed by it for `DNS:localhost, IP:127.0.0.1`,
/// * a server certificate signed by it for `DNS:wrong-host.invalid` only (host-name
///   mismatch tests),
/// * a client certificate signed by it (`extendedKeyUsage=clientAuth`) for mutual TLS,
/// * an unrelated CA ("unknown CA" tests: trust it instead of the real one).
///
/// [`TestCerts::get`] generates them once per process; the files live in a temp dir
/// that a watchdog removes when the process exits.
#[derive(Debug)]
pub struct TestCerts {
    dir: TempDir,
    ca_pem: Vec<u8>,
    other_ca_pem: Vec<u8>,
    client_cert_pem: Vec<u8>,
    client_key_pem: Vec<u8>,
    _watchdog: Option<WatchdogHandle>,
}

/// Wrapper so `TestCerts` can be `Debug`.
struct WatchdogHandle(#[allow(dead_code)] Watchdog);

impl std::fmt::Debug for WatchdogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watchdog")
    }
}

impl TestCerts {
    /// The process-wide certificates, generated on first use.
    pub fn get() -> Result<&'static TestCerts> {
        static CERTS: OnceLock<std::result::Result<TestCerts, String>> = OnceLock::new();
        CERTS
            .get_or_init(|| {
                let mut c = TestCerts::generate().map_err(|e| e.detail().to_owned())?;
                // A `static` is never dropped: remove the files when the process exits.
                c._watchdog = Watchdog::spawn(&[], Some(c.dir.path())).map(WatchdogHandle);
                Ok(c)
            })
            .as_ref()
            .map_err(|d| testkit_error(d.clone()))
    }

    /// Generate a fresh set in a new temp dir (removed when the value is dropped).
    pub fn generate() -> Result<TestCerts> {
        let dir = TempDir::new("certs")?;
        let d = dir.path();
        let ext = |name: &str, text: &str| -> Result<PathBuf> {
            let p = d.join(name);
            fs::write(&p, text)
                .map_err(|e| testkit_error(format!("write {}: {e}", p.display())))?;
            Ok(p)
        };
        let server_ext = ext(
            "server.ext",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )?;
        let wrong_ext = ext(
            "wrong-host.ext",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:wrong-host.invalid\n",
        )?;
        let client_ext = ext(
            "client.ext",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=clientAuth\n",
        )?;
        make_ca(d, "ca", "valkit test CA")?;
        make_ca(d, "other-ca", "valkit unrelated CA")?;
        make_leaf(d, "server", "localhost", &server_ext, 1)?;
        make_leaf(d, "wrong-host", "wrong-host.invalid", &wrong_ext, 2)?;
        make_leaf(d, "client", "valkit test client", &client_ext, 3)?;
        let read = |name: &str| -> Result<Vec<u8>> {
            let p = d.join(name);
            fs::read(&p).map_err(|e| testkit_error(format!("read {}: {e}", p.display())))
        };
        Ok(TestCerts {
            ca_pem: read("ca.pem")?,
            other_ca_pem: read("other-ca.pem")?,
            client_cert_pem: read("client.pem")?,
            client_key_pem: read("client.key")?,
            dir,
            _watchdog: None,
        })
    }

    /// The directory holding all files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM): trust this to verify the test servers.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// Path of the CA certificate (`ca.pem`).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir().join("ca.pem")
    }

    /// Path of the CA private key (`ca.key`).
    pub fn ca_key_path(&self) -> PathBuf {
        self.dir().join("ca.key")
    }

    /// Path of the server certificate (`localhost`, `127.0.0.1`).
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir().join("server.pem")
    }

    /// Path of the server private key.
    pub fn server_key_path(&self) -> PathBuf {
        self.dir().join("server.key")
    }

    /// Path of a certificate signed by the test CA for `wrong-host.invalid` only.
    pub fn wrong_host_cert_path(&self) -> PathBuf {
        self.dir().join("wrong-host.pem")
    }

    /// Path of the private key of [`TestCerts::wrong_host_cert_path`].
    pub fn wrong_host_key_path(&self) -> PathBuf {
        self.dir().join("wrong-host.key")
    }

    /// An unrelated CA certificate (PEM) that signed nothing the servers use.
    pub fn other_ca_pem(&self) -> &[u8] {
        &self.other_ca_pem
    }

    /// Path of the unrelated CA certificate.
    pub fn other_ca_cert_path(&self) -> PathBuf {
        self.dir().join("other-ca.pem")
    }

    /// The client certificate (PEM), signed by the test CA, for mutual TLS.
    pub fn client_cert_pem(&self) -> &[u8] {
        &self.client_cert_pem
    }

    /// The client private key (PKCS#8 PEM, `BEGIN PRIVATE KEY`).
    pub fn client_key_pem(&self) -> &[u8] {
        &self.client_key_pem
    }

    /// Path of the client certificate.
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir().join("client.pem")
    }

    /// Path of the client private key.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir().join("client.key")
    }
}

fn openssl(args: &[&std::ffi::OsStr], what: &str) -> Result<()> {
    let bin = openssl_binary()?;
    let out = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| testkit_error(format!("{what}: cannot run {}: {e}", bin.display())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(testkit_error(format!(
            "{what}: openssl failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn make_ca(d: &Path, name: &str, cn: &str) -> Result<()> {
    let key = d.join(format!("{name}.key"));
    let cert = d.join(format!("{name}.pem"));
    let subj = format!("/CN={cn}");
    openssl(
        &[
            "req".as_ref(),
            "-x509".as_ref(),
            "-newkey".as_ref(),
            "ec".as_ref(),
            "-pkeyopt".as_ref(),
            "ec_paramgen_curve:P-256".as_ref(),
            "-nodes".as_ref(),
            "-keyout".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            cert.as_os_str(),
            "-days".as_ref(),
            "2".as_ref(),
            "-subj".as_ref(),
            subj.as_ref(),
            "-addext".as_ref(),
            "basicConstraints=critical,CA:TRUE".as_ref(),
            "-addext".as_ref(),
            "keyUsage=critical,keyCertSign,cRLSign".as_ref(),
        ],
        &format!("generate the {cn} certificate"),
    )
}

fn make_leaf(d: &Path, name: &str, cn: &str, ext: &Path, serial: u32) -> Result<()> {
    let key = d.join(format!("{name}.key"));
    let csr = d.join(format!("{name}.csr"));
    let cert = d.join(format!("{name}.pem"));
    let subj = format!("/CN={cn}");
    let what = format!("generate the {name} certificate");
    openssl(
        &[
            "req".as_ref(),
            "-new".as_ref(),
            "-newkey".as_ref(),
            "ec".as_ref(),
            "-pkeyopt".as_ref(),
            "ec_paramgen_curve:P-256".as_ref(),
            "-nodes".as_ref(),
            "-keyout".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            csr.as_os_str(),
            "-subj".as_ref(),
            subj.as_ref(),
        ],
        &what,
    )?;
    let serial = format!("{:#x}", 0x5a11_0000_u64 + u64::from(serial));
    openssl(
        &[
            "x509".as_ref(),
            "-req".as_ref(),
            "-in".as_ref(),
            csr.as_os_str(),
            "-CA".as_ref(),
            d.join("ca.pem").as_os_str(),
            "-CAkey".as_ref(),
            d.join("ca.key").as_os_str(),
            "-set_serial".as_ref(),
            serial.as_ref(),
            "-days".as_ref(),
            "2".as_ref(),
            "-extfile".as_ref(),
            ext.as_os_str(),
            "-out".as_ref(),
            cert.as_os_str(),
        ],
        &what,
    )
}

/// Options for a [`TlsFront`]; build with [`TlsFront::builder`].
#[derive(Debug, Clone)]
pub struct TlsFrontOptions {
    upstream: u16,
    cert: Option<(PathBuf, PathBuf)>,
    max_tls_version: Option<String>,
}

impl TlsFrontOptions {
    /// Serve this certificate chain and key (PEM files) instead of the test server
    /// certificate, e.g. [`TestCerts::wrong_host_cert_path`].
    pub fn cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert = Some((cert.into(), key.into()));
        self
    }

    /// Cap the TLS version (stunnel names: `"TLSv1"`, `"TLSv1.1"`, `"TLSv1.2"`,
    /// `"TLSv1.3"`). With a cap the floor drops to TLSv1 and the OpenSSL security level
    /// to 0, so `Some("TLSv1.1")` makes a front that only speaks TLS 1.0/1.1: a client
    /// that requires TLS 1.2 must refuse it. `None` (default): TLS 1.2 and newer.
    pub fn max_tls_version(mut self, version: Option<&str>) -> Self {
        self.max_tls_version = version.map(str::to_owned);
        self
    }

    /// Start stunnel on a free loopback port and wait until it accepts connections.
    pub fn start(self) -> Result<TlsFront> {
        TlsFront::start_with(self)
    }
}

/// A TLS terminator (stunnel) on `127.0.0.1:<port>` forwarding plain TCP to
/// `127.0.0.1:<upstream>`. Used for Valkey TLS (the bundled binary has no TLS) and usable
/// in front of any port. Killed, and its temp dir removed, on drop.
#[derive(Debug)]
pub struct TlsFront {
    port: u16,
    upstream: u16,
    conf: PathBuf,
    binary: PathBuf,
    proc: Mutex<Option<FrontProc>>,
    dir: TempDir,
}

#[derive(Debug)]
struct FrontProc {
    child: Child,
    watchdog: Option<WatchdogHandle>,
}

impl Drop for FrontProc {
    fn drop(&mut self) {
        drop(self.watchdog.take());
        kill_and_wait(&mut self.child);
    }
}

const READY_DEADLINE: Duration = Duration::from_secs(10);
const ATTEMPTS: usize = 5;

impl TlsFront {
    /// Options for a front forwarding to `127.0.0.1:upstream`.
    pub fn builder(upstream: u16) -> TlsFrontOptions {
        TlsFrontOptions {
            upstream,
            cert: None,
            max_tls_version: None,
        }
    }

    /// A front with default options (test server certificate, TLS 1.2+).
    pub fn start(upstream: u16) -> Result<TlsFront> {
        TlsFront::builder(upstream).start()
    }

    fn start_with(opts: TlsFrontOptions) -> Result<TlsFront> {
        let binary = stunnel_binary()?;
        let (cert, key) = match opts.cert.clone() {
            Some(ck) => ck,
            None => {
                let c = TestCerts::get()?;
                (c.server_cert_path(), c.server_key_path())
            }
        };
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let dir = TempDir::new("tls")?;
            let port = free_port();
            let conf = dir.path().join("stunnel.conf");
            let mut text = format!(
                "foreground = yes\npid =\noutput = {log}\ndebug = 5\n\
                 [valkit]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{up}\n\
                 cert = {cert}\nkey = {key}\n",
                log = dir.path().join("stunnel.log").display(),
                up = opts.upstream,
                cert = cert.display(),
                key = key.display(),
            );
            match &opts.max_tls_version {
                None => text.push_str("sslVersionMin = TLSv1.2\n"),
                Some(v) => text.push_str(&format!(
                    "sslVersionMin = TLSv1\nsslVersionMax = {v}\nciphers = DEFAULT@SECLEVEL=0\n"
                )),
            }
            fs::write(&conf, text)
                .map_err(|e| testkit_error(format!("write {}: {e}", conf.display())))?;
            let mut front = TlsFront {
                port,
                upstream: opts.upstream,
                conf,
                binary: binary.clone(),
                proc: Mutex::new(None),
                dir,
            };
            match front.spawn_and_wait() {
                Ok(()) => return Ok(front),
                Err(e) if e.retry => last = Some(e.error),
                Err(e) => return Err(e.error),
            }
        }
        Err(last.unwrap_or_else(|| testkit_error("stunnel did not start")))
    }

    fn spawn_and_wait(&mut self) -> std::result::Result<(), StartError> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("stunnel.out"))
            .map_err(|e| StartError::fatal(format!("open stunnel.out: {e}")))?;
        let log2 = log
            .try_clone()
            .map_err(|e| StartError::fatal(format!("open stunnel.out: {e}")))?;
        let child = Command::new(&self.binary)
            .arg(&self.conf)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| StartError::fatal(format!("cannot run {}: {e}", self.binary.display())))?;
        let watchdog = Watchdog::spawn(&[child.id()], Some(self.dir.path())).map(WatchdogHandle);
        let mut guard = self.proc.lock();
        let p = guard.insert(FrontProc { child, watchdog });
        let deadline = Instant::now() + READY_DEADLINE;
        let mut backoff = Backoff::new();
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                let tail = self.log_tail(20);
                *guard = None;
                let retry = tail.contains("in use") || tail.contains("bind");
                return Err(StartError {
                    retry,
                    error: testkit_error(format!(
                        "stunnel for 127.0.0.1:{} exited during startup ({status}); log:\n{tail}",
                        self.port
                    )),
                });
            }
            if process::connect(self.port, Duration::from_millis(200)).is_ok() {
                // Someone answered; make sure it is our stunnel that is still alive.
                if let Ok(None) = p.child.try_wait() {
                    return Ok(());
                }
                continue;
            }
            if Instant::now() >= deadline {
                let tail = self.log_tail(20);
                *guard = None;
                return Err(StartError::fatal(format!(
                    "stunnel did not accept on 127.0.0.1:{} within {READY_DEADLINE:?}; log:\n{tail}",
                    self.port
                )));
            }
            backoff.pause(deadline);
        }
    }

    /// The TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The plain-TCP port it forwards to.
    pub fn upstream_port(&self) -> u16 {
        self.upstream
    }

    /// Whether stunnel is running.
    pub fn is_running(&self) -> bool {
        match self.proc.lock().as_mut() {
            Some(p) => matches!(p.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kill stunnel (SIGKILL) and wait for it. The port then refuses connections.
    pub fn kill(&mut self) {
        *self.proc.lock() = None;
    }

    /// Start stunnel again on the same port (after [`TlsFront::kill`], or to replace a
    /// running one) and wait until it accepts connections.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn_and_wait().map_err(|e| e.error)
    }

    /// The last `n` lines of stunnel's log.
    pub fn log_tail(&self, n: usize) -> String {
        let mut s = log_tail_of(&self.dir.path().join("stunnel.log"), n);
        let out = log_tail_of(&self.dir.path().join("stunnel.out"), n);
        if !out.trim().is_empty() {
            s.push_str(&out);
        }
        s
    }

    /// The front's temp dir (config and logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

pub(crate) struct StartError {
    pub(crate) retry: bool,
    pub(crate) error: crate::Error,
}

impl StartError {
    pub(crate) fn fatal(msg: impl Into<String>) -> StartError {
        StartError {
            retry: false,
            error: testkit_error(msg),
        }
    }
}
