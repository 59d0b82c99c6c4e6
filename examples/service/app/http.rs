//! Small HTTP helpers: a reply type independent of the server crate, JSON bodies, query
//! strings and path segments.

use serde_json::{json, Value};

/// What a handler answers; converted into a `tiny_http` response at the edge.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON body.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    /// A plain-text body.
    pub fn text(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::json(status, &json!({ "error": message.into() }))
    }

    /// A 400 with a message saying what was wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> Reply {
        Reply::error(400, message)
    }

    /// Add a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// `Err(reply)` ends a handler early with that reply.
pub type Handled = Result<Reply, Reply>;

/// Split `/path?query` into the path and the decoded query pairs.
pub fn split_url(url: &str) -> (&str, Vec<(String, String)>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path, pairs)
}

/// `%XX` and `+` decoding; invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The value of query parameter `name` (the last one wins).
pub fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A user id: a whole number from 1 to 2^53 (exact in JSON everywhere).
pub fn parse_id(s: &str) -> Result<u64, Reply> {
    match s.parse::<u64>() {
        Ok(id) if (1..=(1u64 << 53)).contains(&id) && !s.starts_with('+') => Ok(id),
        _ => Err(Reply::bad_request(format!(
            "invalid id '{}': expected a whole number from 1 to 9007199254740992",
            truncate(s, 40)
        ))),
    }
}

/// Query parameter `name` as a whole number in `min..=max`, `default` when absent.
pub fn parse_range(
    query: &[(String, String)],
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, Reply> {
    match param(query, name) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Reply::bad_request(format!(
                "invalid {name} '{}': expected a whole number from {min} to {max}",
                truncate(v, 40)
            ))),
        },
    }
}

/// At most `n` characters of `s` (for echoing bad input back safely).
pub fn truncate(s: &str, n: usize) -> String {
    let mut t: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        t.push('…');
    }
    t.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_ids() {
        let (path, q) = split_url("/bulk/users?ids=1%2C2,3&x=a+b&bad=%zz&t=%4");
        assert_eq!(path, "/bulk/users");
        assert_eq!(param(&q, "ids"), Some("1,2,3"));
        assert_eq!(param(&q, "x"), Some("a b"));
        assert_eq!(param(&q, "bad"), Some("%zz"));
        assert_eq!(param(&q, "t"), Some("%4"));
        assert!(parse_id("7").is_ok());
        for bad in ["0", "-1", "+1", "x", "", "9007199254740993"] {
            assert_eq!(parse_id(bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
