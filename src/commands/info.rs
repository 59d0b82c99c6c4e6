//! [`Info`]: the parsed reply of `INFO`.

use std::collections::BTreeMap;

use crate::cmd::FromValue;
use crate::error::Result;
use crate::resp::Value;

/// The reply of `INFO`, split into sections (`# Server`, `# Clients`, ...) of `field:value`
/// lines.
///
/// Section names are kept in lower case, so `section("server")` finds `# Server`.
///
/// ```
/// use valkit::Info;
/// let info = Info::parse("# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0\r\n");
/// assert_eq!(info.get("server", "redis_version"), Some("7.0.15"));
/// assert_eq!(info.get("Keyspace", "db0"), Some("keys=1,expires=0"));
/// assert_eq!(info.field("redis_version"), Some("7.0.15"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Info {
    /// Parse the text of an `INFO` reply. Lines before the first header go to a section
    /// named `""`; lines that are neither headers nor `field:value` are skipped.
    pub fn parse(text: &str) -> Info {
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current = String::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(name) = line.strip_prefix('#') {
                current = name.trim().to_ascii_lowercase();
                sections.entry(current.clone()).or_default();
            } else if let Some((field, value)) = line.split_once(':') {
                sections
                    .entry(current.clone())
                    .or_default()
                    .insert(field.to_owned(), value.to_owned());
            }
        }
        Info { sections }
    }

    /// The value of `field` in `section` (section names match case-insensitively).
    pub fn get(&self, section: &str, field: &str) -> Option<&str> {
        self.section(section)?.get(field).map(String::as_str)
    }

    /// The first section (in name order) holding `field`, when the section does not matter.
    pub fn field(&self, field: &str) -> Option<&str> {
        self.sections
            .values()
            .find_map(|s| s.get(field))
            .map(String::as_str)
    }

    /// All fields of one section.
    pub fn section(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.sections.get(&name.to_ascii_lowercase())
    }

    /// All sections, by lower-case name.
    pub fn sections(&self) -> &BTreeMap<String, BTreeMap<String, String>> {
        &self.sections
    }

    /// The server's version: `valkey_version` on Valkey, `redis_version` otherwise.
    pub fn server_version(&self) -> Option<&str> {
        self.get("server", "valkey_version")
            .or_else(|| self.get("server", "redis_version"))
    }
}

impl FromValue for Info {
    /// From a bulk string (RESP2) or a verbatim string (RESP3).
    fn from_value(v: Value) -> Result<Info> {
        String::from_value(v).map(|s| Info::parse(&s))
    }
}
