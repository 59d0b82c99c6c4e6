//! A small hand-written argument parser: flags, `--name value` / `--name=value`
//! options, positionals, and a check that nothing unknown was left.

use std::time::Duration;

/// Why a command stopped early.
pub(crate) enum Failure {
    /// Bad usage: message, exit 2.
    Usage(String),
    /// `--help`: print this, exit 0.
    Help(String),
    /// The operation failed: message, exit 1.
    Failed(String),
}

impl From<valkit::Error> for Failure {
    fn from(e: valkit::Error) -> Failure {
        Failure::Failed(e.to_string())
    }
}

#[cfg(feature = "json")]
impl From<valkit::queue::QueueError> for Failure {
    fn from(e: valkit::queue::QueueError) -> Failure {
        Failure::Failed(e.to_string())
    }
}

impl From<valkit::lock::LockError> for Failure {
    fn from(e: valkit::lock::LockError) -> Failure {
        Failure::Failed(e.to_string())
    }
}

/// The arguments not consumed yet.
pub(crate) struct Args {
    rest: Vec<String>,
}

impl Args {
    pub fn new(rest: Vec<String>) -> Args {
        Args { rest }
    }

    /// Remove `name` wherever it is (before a `--`); true when it was there.
    pub fn flag(&mut self, name: &str) -> bool {
        let end = self.end();
        if let Some(i) = self.rest[..end].iter().position(|a| a == name) {
            self.rest.remove(i);
            true
        } else {
            false
        }
    }

    /// `--help` / `-h`: the subcommand's help.
    pub fn help(&mut self, text: &str) -> Result<(), Failure> {
        if self.flag("--help") || self.flag("-h") {
            return Err(Failure::Help(text.to_owned()));
        }
        Ok(())
    }

    fn end(&self) -> usize {
        self.rest
            .iter()
            .position(|a| a == "--")
            .unwrap_or(self.rest.len())
    }

    /// `--name value` or `--name=value`, wherever it is.
    pub fn value(&mut self, name: &str) -> Result<Option<String>, Failure> {
        let end = self.end();
        let prefix = format!("{name}=");
        for i in 0..end {
            if self.rest[i] == name {
                if i + 1 >= end {
                    return Err(Failure::Usage(format!("{name} needs a value")));
                }
                let v = self.rest.remove(i + 1);
                self.rest.remove(i);
                return Ok(Some(v));
            }
            if let Some(v) = self.rest[i].strip_prefix(&prefix) {
                let v = v.to_owned();
                self.rest.remove(i);
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Every `--name value` (repeatable option).
    pub fn values(&mut self, name: &str) -> Result<Vec<String>, Failure> {
        let mut out = Vec::new();
        while let Some(v) = self.value(name)? {
            out.push(v);
        }
        Ok(out)
    }

    /// A number option.
    pub fn number(&mut self, name: &str) -> Result<Option<u64>, Failure> {
        match self.value(name)? {
            None => Ok(None),
            Some(v) => v
                .replace('_', "")
                .parse()
                .map(Some)
                .map_err(|_| Failure::Usage(format!("{name}: `{v}` is not a whole number"))),
        }
    }

    /// A duration option: `500ms`, `2s`, `1m`, or plain seconds (`1.5`).
    pub fn duration(&mut self, name: &str) -> Result<Option<Duration>, Failure> {
        match self.value(name)? {
            None => Ok(None),
            Some(v) => parse_duration(&v).map(Some).ok_or_else(|| {
                Failure::Usage(format!("{name}: `{v}` is not a duration (500ms, 2s, 1m)"))
            }),
        }
    }

    /// The next positional argument (options must have been taken first).
    pub fn positional(&mut self) -> Option<String> {
        let i = self
            .rest
            .iter()
            .position(|a| !a.starts_with('-') || a == "-")?;
        if self.rest[..i].iter().any(|a| a == "--") {
            // After `--` everything is positional.
            let dd = self.rest.iter().position(|a| a == "--")?;
            if dd + 1 < self.rest.len() {
                return Some(self.rest.remove(dd + 1));
            }
            return None;
        }
        Some(self.rest.remove(i))
    }

    /// A required positional.
    pub fn required(&mut self, what: &str) -> Result<String, Failure> {
        self.positional()
            .ok_or_else(|| Failure::Usage(format!("missing {what}")))
    }

    /// Fail on anything left over.
    pub fn finish(self) -> Result<(), Failure> {
        match self.rest.into_iter().find(|a| a != "--") {
            None => Ok(()),
            Some(a) if a.starts_with('-') => Err(Failure::Usage(format!("unknown option `{a}`"))),
            Some(a) => Err(Failure::Usage(format!("unexpected argument `{a}`"))),
        }
    }
}

/// `500ms`, `2s`, `1m`, `1h`, or plain (fractional) seconds.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 || v * scale > 1e9 {
        return None;
    }
    Some(Duration::from_secs_f64(v * scale))
}
