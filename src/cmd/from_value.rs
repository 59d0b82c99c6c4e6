//! [`FromValue`]: turning replies into Rust values, with typed conversion errors.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

use super::execute::NextReply;
use crate::error::{Error, Result};
use crate::resp::{Frame, FrameKind, Value};

/// A Rust type a reply can be converted into.
///
/// Rules: an error reply converts into `Err` (its server error) whatever the target;
/// `Nil` converts only into `Option::None` (or `()`, or [`Value`]), anything else is a
/// conversion error naming both types; attributes are looked through. Numbers parse from
/// integers, doubles and numeric strings; strings must be UTF-8 for `String`.
///
/// ```
/// use valkit::{FromValue, Value};
/// let v = Value::Array(vec![Value::Bulk(b"7".into()), Value::Nil]);
/// let (n, missing): (i64, Option<String>) = FromValue::from_value(v).unwrap();
/// assert_eq!((n, missing), (7, None));
/// assert!(i64::from_value(Value::Nil).is_err());
/// ```
pub trait FromValue: Sized {
    /// Convert, or explain why not.
    fn from_value(v: Value) -> Result<Self>;

    /// Convert a reply read in place (see [`Frame`]), with exactly the rules of
    /// [`FromValue::from_value`]. The provided version builds the [`Value`] first; the
    /// library's own types read the frame directly, copying only what they keep.
    ///
    /// A type of your own reads frames through the types it is made of:
    ///
    /// ```
    /// use valkit::resp::Frame;
    /// use valkit::{FromValue, Value};
    ///
    /// /// A point stored as a two-element array.
    /// #[derive(Debug, PartialEq)]
    /// struct Point(i64, i64);
    ///
    /// impl FromValue for Point {
    ///     fn from_value(v: Value) -> valkit::Result<Self> {
    ///         let (x, y) = <(i64, i64)>::from_value(v)?;
    ///         Ok(Point(x, y))
    ///     }
    ///     // Optional: read the reply where it lies, without building a `Value`
    ///     // (what `Commands::query` and the typed helpers call).
    ///     fn from_frame(f: Frame<'_>) -> valkit::Result<Self> {
    ///         let (x, y) = <(i64, i64)>::from_frame(f)?;
    ///         Ok(Point(x, y))
    ///     }
    /// }
    ///
    /// let v = Value::Array(vec![Value::Int(3), Value::Bulk(b"4".into())]);
    /// assert_eq!(Point::from_value(v).unwrap(), Point(3, 4));
    /// ```
    fn from_frame(f: Frame<'_>) -> Result<Self> {
        Self::from_value(f.to_value())
    }

    /// True for two-element tuples: a `Vec` of them also reads a flat array
    /// `k1, v1, k2, v2, ...` (RESP2 `HGETALL`, `ZRANGE ... WITHSCORES`) or a map, two
    /// elements at a time. Not meant to be set outside this crate.
    #[doc(hidden)]
    const IS_PAIR: bool = false;

    /// Build a pair from two side-by-side frames (only called when [`FromValue::IS_PAIR`]).
    #[doc(hidden)]
    fn from_frame_pair(first: Frame<'_>, second: Frame<'_>) -> Result<Self> {
        let _ = (first, second);
        Err(Error::conversion("not a pair type"))
    }

    /// Build a pair from two side-by-side values (only called when [`FromValue::IS_PAIR`]).
    #[doc(hidden)]
    fn from_value_pair(first: Value, second: Value) -> Result<Self> {
        let _ = (first, second);
        Err(Error::conversion("not a pair type"))
    }

    /// Build the result of [`Pipeline::query`](crate::Pipeline::query) from `n` replies,
    /// each read in place by calling `next` with a reader, exactly as
    /// [`FromValue::from_value`] converts an array of those replies. The provided version
    /// builds that array; sequences, tuples and `()` read each reply into its place.
    /// Plumbing of `Pipeline::query`, outside semver.
    #[doc(hidden)]
    fn from_replies(n: usize, next: &mut NextReply<'_>) -> Result<Self> {
        replies_as_array(n, next)
    }
}

/// The provided [`FromValue::from_replies`]: the replies as one array of values.
fn replies_as_array<T: FromValue>(n: usize, next: &mut NextReply<'_>) -> Result<T> {
    let mut items = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        next(&mut |f| {
            items.push(f.to_value());
            Ok(())
        })?;
    }
    T::from_value(Value::Array(items))
}

/// Look through attributes and turn an error reply into `Err` (as [`plain`] does).
fn plain_frame(f: Frame<'_>) -> Result<Frame<'_>> {
    f.strip_attributes().into_result()
}

/// The bytes of a bulk or simple string or a verbatim text, read in place.
fn frame_text<'a>(f: &Frame<'a>) -> Option<&'a [u8]> {
    match f.kind() {
        FrameKind::Bulk | FrameKind::Simple | FrameKind::Verbatim => f.text_bytes(),
        _ => None,
    }
}

fn unexpected<T>(v: &Value, want: &str) -> Result<T> {
    Err(Error::conversion(format!(
        "cannot convert a {} reply into {want}",
        v.type_name()
    )))
}

/// Look through attributes and turn error replies into `Err`.
fn plain(v: Value) -> Result<Value> {
    v.strip_attributes().into_result()
}

impl FromValue for Value {
    fn from_value(v: Value) -> Result<Self> {
        v.into_result()
    }
}

impl FromValue for () {
    fn from_value(v: Value) -> Result<Self> {
        plain(v).map(|_| ())
    }

    fn from_frame(f: Frame<'_>) -> Result<Self> {
        plain_frame(f).map(|_| ())
    }

    fn from_replies(n: usize, next: &mut NextReply<'_>) -> Result<Self> {
        for _ in 0..n {
            next(&mut |_| Ok(()))?;
        }
        Ok(())
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> Result<Self> {
        match plain(v)? {
            Value::Bulk(b) => Ok(b.into_vec()),
            Value::Simple(s) => Ok(s.into_bytes()),
            Value::Verbatim { text, .. } => Ok(text.into_vec()),
            Value::Int(i) => Ok(i.to_string().into_bytes()),
            Value::Double(d) => Ok(d.to_string().into_bytes()),
            Value::BigNumber(n) => Ok(n.into_bytes()),
            other => unexpected(&other, "bytes"),
        }
    }

    #[inline]
    fn from_frame(f: Frame<'_>) -> Result<Self> {
        // The usual reply first: a string is neither an attribute nor an error.
        if let Some(b) = f.text_bytes() {
            return Ok(b.to_vec());
        }
        let f = plain_frame(f)?;
        match frame_text(&f) {
            Some(b) => Ok(b.to_vec()),
            None => Self::from_value(f.to_value()),
        }
    }
}

/// The bytes without copying them: a bulk string stays a view of the buffer it arrived in
/// (see [`crate::resp::Bytes`] on memory); other string-like replies as for `Vec<u8>`.
impl FromValue for crate::resp::Bytes {
    fn from_value(v: Value) -> Result<Self> {
        match plain(v)? {
            Value::Bulk(b) => Ok(b),
            Value::Verbatim { text, .. } => Ok(text),
            other => Vec::<u8>::from_value(other).map(Self::from),
        }
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<Self> {
        let bytes = Vec::<u8>::from_value(v)?;
        String::from_utf8(bytes)
            .map_err(|e| Error::conversion("reply is not valid UTF-8").with_source(e))
    }

    fn from_frame(f: Frame<'_>) -> Result<Self> {
        let bytes = Vec::<u8>::from_frame(f)?;
        String::from_utf8(bytes)
            .map_err(|e| Error::conversion("reply is not valid UTF-8").with_source(e))
    }
}

fn parse_num<T: std::str::FromStr>(v: Value, want: &str) -> Result<T> {
    let text = match plain(v)? {
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Bool(b) => (b as u8).to_string(),
        Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Simple(s) => s.into_string(),
        Value::BigNumber(s) => s,
        other => return unexpected(&other, want),
    };
    text.trim()
        .parse()
        .map_err(|_| Error::conversion(format!("cannot parse {text:?} as {want}")))
}

/// Parse the text of a string reply as a number, with the message [`parse_num`] gives.
fn parse_text<T: std::str::FromStr>(b: &[u8], want: &str) -> Result<T> {
    match std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        Some(n) => Ok(n),
        None => Err(Error::conversion(format!(
            "cannot parse {:?} as {want}",
            String::from_utf8_lossy(b)
        ))),
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> Result<Self> {
                match plain(v)? {
                    Value::Int(i) => <$t>::try_from(i).map_err(|_| {
                        Error::conversion(format!("{i} does not fit in {}", stringify!($t)))
                    }),
                    other => parse_num(other, stringify!($t)),
                }
            }

            fn from_frame(f: Frame<'_>) -> Result<Self> {
                let f = plain_frame(f)?;
                if let Some(i) = f.as_int() {
                    return <$t>::try_from(i).map_err(|_| {
                        Error::conversion(format!("{i} does not fit in {}", stringify!($t)))
                    });
                }
                match f.kind() {
                    // A counter read with GET: parsed in place.
                    FrameKind::Bulk | FrameKind::Simple => match f.as_bytes() {
                        Some(b) => parse_text(b, stringify!($t)),
                        None => Self::from_value(f.to_value()),
                    },
                    _ => Self::from_value(f.to_value()),
                }
            }
        }
    )*};
}
int_from_value!(i8, i16, i32, i64, isize, u16, u32, u64, usize);

impl FromValue for f64 {
    fn from_value(v: Value) -> Result<Self> {
        match plain(v)? {
            Value::Double(d) => Ok(d),
            Value::Int(i) => Ok(i as f64),
            other => parse_num(other, "f64"),
        }
    }

    fn from_frame(f: Frame<'_>) -> Result<Self> {
        let f = plain_frame(f)?;
        match f.kind() {
            FrameKind::Double => Ok(f.as_double().unwrap_or_default()),
            FrameKind::Int => Ok(f.as_int().unwrap_or_default() as f64),
            // A score or INCRBYFLOAT result in RESP2, `inf` and `-inf` included.
            FrameKind::Bulk | FrameKind::Simple => match f.as_bytes() {
                Some(b) => parse_text(b, "f64"),
                None => Self::from_value(f.to_value()),
            },
            _ => Self::from_value(f.to_value()),
        }
    }
}

impl FromValue for f32 {
    fn from_value(v: Value) -> Result<Self> {
        f64::from_value(v).map(|d| d as f32)
    }

    fn from_frame(f: Frame<'_>) -> Result<Self> {
        f64::from_frame(f).map(|d| d as f32)
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self> {
        match plain(v)? {
            Value::Bool(b) => Ok(b),
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            Value::Simple(s) if s == "OK" => Ok(true),
            Value::Bulk(b) if b == b"1" => Ok(true),
            Value::Bulk(b) if b == b"0" => Ok(false),
            other => unexpected(&other, "bool"),
        }
    }

    fn from_frame(f: Frame<'_>) -> Result<Self> {
        let f = plain_frame(f)?;
        match (f.kind(), f.as_bool(), f.as_int(), f.as_bytes()) {
            (_, Some(b), _, _) => Ok(b),
            (_, _, Some(0), _) => Ok(false),
            (_, _, Some(1), _) => Ok(true),
            (FrameKind::Simple, _, _, Some(b"OK")) | (FrameKind::Bulk, _, _, Some(b"1")) => {
                Ok(true)
            }
            (FrameKind::Bulk, _, _, Some(b"0")) => Ok(false),
            _ => Self::from_value(f.to_value()),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self> {
        match plain(v)? {
            Value::Nil => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }

    #[inline]
    fn from_frame(f: Frame<'_>) -> Result<Self> {
        // Neither an attribute nor an error (the usual reply): `plain_frame` would return
        // it as it is.
        let f = match f.kind() {
            FrameKind::Nil => return Ok(None),
            FrameKind::Attribute | FrameKind::Error => plain_frame(f)?,
            _ => f,
        };
        if f.is_nil() {
            return Ok(None);
        }
        T::from_frame(f).map(Some)
    }
}

/// Elements of an array-like reply; a map is flattened into `k1, v1, k2, v2, ...`.
fn elements(v: Value, want: &str) -> Result<Vec<Value>> {
    match plain(v)? {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Push { data, .. } => Ok(data),
        Value::Map(pairs) => Ok(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        other => unexpected(&other, want),
    }
}

/// Key/value pairs of a map reply, or of a flat array `k1, v1, ...` (RESP2).
fn pairs(v: Value, want: &str) -> Result<Vec<(Value, Value)>> {
    match plain(v)? {
        Value::Map(pairs) => Ok(pairs),
        Value::Array(items) | Value::Set(items)
            if items.first().is_some_and(|f| matches!(f, Value::Array(_))) =>
        {
            items
                .into_iter()
                .map(|item| match item {
                    Value::Array(kv) if kv.len() == 2 => {
                        let mut it = kv.into_iter();
                        Ok((
                            it.next().unwrap_or(Value::Nil),
                            it.next().unwrap_or(Value::Nil),
                        ))
                    }
                    other => Err(Error::conversion(format!(
                        "cannot read a {} element as a {want} pair",
                        other.type_name()
                    ))),
                })
                .collect()
        }
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(Error::conversion(format!(
                    "an array of {} elements cannot be read as {want} pairs",
                    items.len()
                )));
            }
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            Ok(out)
        }
        other => unexpected(&other, want),
    }
}

/// True for the aggregate kinds (an element that is itself a list of things).
fn is_aggregate(f: &Frame<'_>) -> bool {
    matches!(
        f.strip_attributes().kind(),
        FrameKind::Array | FrameKind::Set | FrameKind::Map | FrameKind::Push
    )
}

/// Elements of an array-like frame as [`elements`] gives them: a map's keys and values
/// alternate, a push's kind is left out.
fn frame_elements<'a>(f: Frame<'a>, want: &str) -> Result<crate::resp::Frames<'a>> {
    let f = plain_frame(f)?;
    match f.kind() {
        FrameKind::Array | FrameKind::Set | FrameKind::Map => Ok(f.iter()),
        FrameKind::Push => {
            let mut it = f.iter();
            it.next();
            Ok(it)
        }
        _ => unexpected(&f.to_value(), want),
    }
}

/// Visit the key/value pairs of a frame, as [`pairs`] reads them from a value: a map, a
/// flat array `k1, v1, ...` (RESP2), or an array of two-element arrays (RESP3
/// `WITHSCORES`-style replies).
fn for_each_pair<'a>(
    f: Frame<'a>,
    want: &str,
    mut visit: impl FnMut(Frame<'a>, Frame<'a>) -> Result<()>,
) -> Result<()> {
    let f = plain_frame(f)?;
    match f.kind() {
        FrameKind::Map => {}
        FrameKind::Array | FrameKind::Set
            if f.iter()
                .next()
                .is_some_and(|e| e.kind() == FrameKind::Array) =>
        {
            for item in f.iter() {
                if item.kind() != FrameKind::Array || item.len() != 2 {
                    return unexpected(&item.to_value(), &format!("a {want} pair"));
                }
                let mut kv = item.iter();
                if let (Some(k), Some(v)) = (kv.next(), kv.next()) {
                    visit(k, v)?;
                }
            }
            return Ok(());
        }
        FrameKind::Array => {
            if f.len() % 2 != 0 {
                return Err(Error::conversion(format!(
                    "an array of {} elements cannot be read as {want} pairs",
                    f.len()
                )));
            }
        }
        _ => return unexpected(&f.to_value(), want),
    }
    let mut it = f.iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        visit(k, v)?;
    }
    Ok(())
}

macro_rules! seq_from_value {
    ($t:ident $(, $bound:path)*) => {
        impl<T: FromValue $(+ $bound)*> FromValue for $t<T> {
            fn from_value(v: Value) -> Result<Self> {
                elements(v, stringify!($t))?.into_iter().map(T::from_value).collect()
            }

            fn from_frame(f: Frame<'_>) -> Result<Self> {
                frame_elements(f, stringify!($t))?.map(T::from_frame).collect()
            }
        }
    };
}
seq_from_value!(BTreeSet, Ord);

impl<T: FromValue, S: BuildHasher + Default> FromValue for HashSet<T, S>
where
    T: Eq + Hash,
{
    fn from_value(v: Value) -> Result<Self> {
        elements(v, "HashSet")?
            .into_iter()
            .map(T::from_value)
            .collect()
    }

    fn from_frame(f: Frame<'_>) -> Result<Self> {
        frame_elements(f, "HashSet")?.map(T::from_frame).collect()
    }
}

/// `u8` deliberately has no `FromValue` impl, so that `Vec<u8>` means "the bytes of a
/// string reply" while `Vec<T>` is a list of replies.
///
/// A `Vec` of two-element tuples also reads a map or a flat array `k1, v1, k2, v2, ...`
/// two elements at a time (`HGETALL`, `ZRANGE ... WITHSCORES` in RESP2), as well as an array
/// of two-element arrays (the same replies in RESP3).
impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(v: Value) -> Result<Self> {
        if T::IS_PAIR {
            let flat = match &v {
                Value::Map(_) => true,
                Value::Array(items) => items.first().is_some_and(|e| {
                    !matches!(
                        e,
                        Value::Array(_) | Value::Set(_) | Value::Map(_) | Value::Push { .. }
                    )
                }),
                _ => false,
            };
            if flat {
                return pairs(v, "Vec")?
                    .into_iter()
                    .map(|(a, b)| T::from_value_pair(a, b))
                    .collect();
            }
        }
        elements(v, "Vec")?.into_iter().map(T::from_value).collect()
    }

    fn from_frame(f: Frame<'_>) -> Result<Self> {
        let f = plain_frame(f)?;
        if T::IS_PAIR
            && (f.kind() == FrameKind::Map
                || (f.kind() == FrameKind::Array
                    && f.iter().next().is_some_and(|e| !is_aggregate(&e))))
        {
            let mut out = Vec::with_capacity(f.len() / 2);
            for_each_pair(f, "Vec", |a, b| {
                out.push(T::from_frame_pair(a, b)?);
                Ok(())
            })?;
            return Ok(out);
        }
        match f.kind() {
            // A map's frames are its keys and values alternating, as `elements` flattens.
            FrameKind::Array | FrameKind::Set | FrameKind::Map => {
                f.iter().map(T::from_frame).collect()
            }
            FrameKind::Push => f.iter().skip(1).map(T::from_frame).collect(),
            _ => Self::from_value(f.to_value()),
        }
    }

    fn from_replies(n: usize, next: &mut NextReply<'_>) -> Result<Self> {
        if T::IS_PAIR {
            // Flat replies pair up two at a time: the array rules decide.
            return replies_as_array(n, next);
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            next(&mut |f| {
                out.push(T::from_frame(f)?);
                Ok(())
            })?;
        }
        Ok(out)
    }
}

impl<K, V, S> FromValue for HashMap<K, V, S>
where
    K: FromValue + Eq + Hash,
    V: FromValue,
    S: BuildHasher + Default,
{
    fn from_value(v: Value) -> Result<Self> {
        pairs(v, "HashMap")?
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
            .collect()
    }

    fn from_frame(f: Frame<'_>) -> Result<Self> {
        let mut out = HashMap::with_capacity_and_hasher(f.len() / 2, S::default());
        for_each_pair(f, "HashMap", |k, v| {
            out.insert(K::from_frame(k)?, V::from_frame(v)?);
            Ok(())
        })?;
        Ok(out)
    }
}

impl<K: FromValue + Ord, V: FromValue> FromValue for BTreeMap<K, V> {
    fn from_value(v: Value) -> Result<Self> {
        pairs(v, "BTreeMap")?
            .into_iter()
            .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
            .collect()
    }

    fn from_frame(f: Frame<'_>) -> Result<Self> {
        let mut out = BTreeMap::new();
        for_each_pair(f, "BTreeMap", |k, v| {
            out.insert(K::from_frame(k)?, V::from_frame(v)?);
            Ok(())
        })?;
        Ok(out)
    }
}

macro_rules! tuple_from_value {
    ($n:expr; $($name:ident)+ $(; { $($extra:tt)* })?) => {
        impl<$($name: FromValue),+> FromValue for ($($name,)+) {
            #[allow(non_snake_case)]
            fn from_value(v: Value) -> Result<Self> {
                let items = elements(v, concat!("a tuple of ", $n))?;
                if items.len() != $n {
                    return Err(Error::conversion(format!(
                        "expected {} elements for a tuple, got {}", $n, items.len()
                    )));
                }
                let mut it = items.into_iter();
                $(let $name = $name::from_value(it.next().unwrap_or(Value::Nil))?;)+
                Ok(($($name,)+))
            }

            #[allow(non_snake_case)]
            fn from_frame(f: Frame<'_>) -> Result<Self> {
                let mut it = frame_elements(f, concat!("a tuple of ", $n))?;
                if it.len() != $n {
                    return Err(Error::conversion(format!(
                        "expected {} elements for a tuple, got {}", $n, it.len()
                    )));
                }
                $(let $name = match it.next() {
                    Some(e) => $name::from_frame(e)?,
                    None => $name::from_value(Value::Nil)?,
                };)+
                Ok(($($name,)+))
            }

            #[allow(non_snake_case)]
            fn from_replies(
                n: usize,
                next: &mut NextReply<'_>,
            ) -> Result<Self> {
                if n != $n {
                    return Err(Error::conversion(format!(
                        "expected {} elements for a tuple, got {}", $n, n
                    )));
                }
                $(let $name = {
                    let mut slot = None;
                    next(&mut |f| {
                        slot = Some($name::from_frame(f)?);
                        Ok(())
                    })?;
                    match slot {
                        Some(x) => x,
                        None => return Err(Error::conversion("a pipeline reply was not read")),
                    }
                };)+
                Ok(($($name,)+))
            }

            $($($extra)*)?
        }
    };
}
tuple_from_value!(1; A);
tuple_from_value!(2; A B; {
    const IS_PAIR: bool = true;

    fn from_frame_pair(first: Frame<'_>, second: Frame<'_>) -> Result<Self> {
        Ok((A::from_frame(first)?, B::from_frame(second)?))
    }

    fn from_value_pair(first: Value, second: Value) -> Result<Self> {
        Ok((A::from_value(first)?, B::from_value(second)?))
    }
});
tuple_from_value!(3; A B C);
tuple_from_value!(4; A B C D);
tuple_from_value!(5; A B C D E);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::with_value_frame;
    use std::fmt::Debug;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().into())
    }

    /// The frame path and the value path agree: both `Ok` and equal, or both `Err` of the
    /// same kind.
    fn agree<T: FromValue + PartialEq + Debug>(v: &Value) -> Result<T> {
        let framed = with_value_frame(v, T::from_frame);
        let valued = T::from_value(v.clone());
        match (&framed, &valued) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{v:?}"),
            (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{v:?}"),
            _ => panic!("{v:?}: frame {framed:?}, value {valued:?}"),
        }
        framed
    }

    fn shapes() -> Vec<Value> {
        vec![
            Value::Nil,
            Value::Int(7),
            Value::Int(-1),
            Value::Double(2.5),
            Value::Double(f64::INFINITY),
            Value::Bool(true),
            Value::Simple("OK".into()),
            bulk("42"),
            bulk("1"),
            bulk("inf"),
            bulk("x"),
            Value::Array(vec![]),
            Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]),
            Value::Array(vec![bulk("a"), bulk("1"), bulk("b")]),
            Value::Array(vec![
                Value::Array(vec![bulk("a"), Value::Double(1.0)]),
                Value::Array(vec![bulk("b"), Value::Double(2.0)]),
            ]),
            Value::Array(vec![Value::Array(vec![bulk("a")])]),
            Value::Map(vec![(bulk("a"), bulk("1")), (bulk("b"), Value::Int(2))]),
            Value::Set(vec![bulk("x"), bulk("y")]),
            Value::Array(vec![Value::Nil, bulk("3")]),
            Value::Error(crate::error::ServerError::new("WRONGTYPE no")),
        ]
    }

    #[test]
    fn frame_and_value_paths_agree_on_every_shape() {
        for v in shapes() {
            let _ = agree::<i64>(&v);
            let _ = agree::<u16>(&v);
            let _ = agree::<f64>(&v);
            let _ = agree::<bool>(&v);
            let _ = agree::<String>(&v);
            let _ = agree::<Option<String>>(&v);
            let _ = agree::<Option<f64>>(&v);
            let _ = agree::<Vec<String>>(&v);
            let _ = agree::<Vec<Option<i64>>>(&v);
            let _ = agree::<Vec<(String, String)>>(&v);
            let _ = agree::<Vec<(String, f64)>>(&v);
            let _ = agree::<(String, i64)>(&v);
            let _ = agree::<(Option<String>, String)>(&v);
            let _ = agree::<HashMap<String, String>>(&v);
            let _ = agree::<BTreeMap<String, i64>>(&v);
            let _ = agree::<HashSet<String>>(&v);
            let _ = agree::<BTreeSet<String>>(&v);
        }
    }

    #[test]
    fn pairs_read_flat_nested_and_map_replies() {
        let want = vec![("a".to_string(), 1.0), ("b".to_string(), 2.0)];
        let flat = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]);
        let nested = Value::Array(vec![
            Value::Array(vec![bulk("a"), Value::Double(1.0)]),
            Value::Array(vec![bulk("b"), Value::Double(2.0)]),
        ]);
        let map = Value::Map(vec![(bulk("a"), Value::Int(1)), (bulk("b"), bulk("2"))]);
        for v in [&flat, &nested, &map] {
            assert_eq!(agree::<Vec<(String, f64)>>(v).unwrap(), want);
            let m = agree::<HashMap<String, f64>>(v).unwrap();
            assert_eq!(m["b"], 2.0);
        }
        // Odd flat arrays and malformed nested pairs are conversion errors.
        let odd = Value::Array(vec![bulk("a"), bulk("1"), bulk("b")]);
        assert_eq!(
            agree::<Vec<(String, f64)>>(&odd).unwrap_err().kind(),
            crate::ErrorKind::Conversion
        );
        assert!(
            agree::<HashMap<String, String>>(&Value::Array(vec![Value::Array(vec![bulk("a")])]))
                .is_err()
        );
        // Numbers parse from bulk strings in place, with the value path's messages.
        assert_eq!(agree::<i64>(&bulk(" 12 ")).unwrap(), 12);
        assert_eq!(agree::<f64>(&bulk("-inf")).unwrap(), f64::NEG_INFINITY);
        let e = agree::<i64>(&bulk("1.5")).unwrap_err();
        assert!(e.to_string().contains("1.5"), "{e}");
        assert!(agree::<bool>(&bulk("0")).is_ok_and(|b| !b));
        assert!(agree::<bool>(&Value::Int(2)).is_err());
    }
}
