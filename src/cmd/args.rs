//! [`ToArgs`]: turning Rust values into command arguments.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Cmd, LARGE_ARG};
use crate::resp::Bytes;

/// Receives the arguments a [`ToArgs`] value writes.
pub struct ArgWriter<'a> {
    pub(super) cmd: &'a mut Cmd,
}

impl ArgWriter<'_> {
    /// Append one argument.
    #[inline]
    pub fn write(&mut self, arg: &[u8]) {
        self.cmd.push_arg(arg);
    }

    /// Append one argument held in a [`Bytes`]: a large one (see
    /// [`LARGE_ARG`](crate::cmd::LARGE_ARG)) is shared, not copied.
    pub fn write_bytes(&mut self, arg: Bytes) {
        self.cmd.push_shared(arg);
    }
}

/// A value that becomes zero or more command arguments.
///
/// Strings and bytes are one argument each, numbers are written in decimal, `bool` as `1`/`0`,
/// `Option::None` as nothing, collections and tuples as one argument per element (maps as
/// `key value` pairs).
///
/// ```
/// use valkit::cmd;
/// let c = cmd("HSET").arg("h").arg(&[("a", 1), ("b", 2)][..]).arg(None::<&str>);
/// assert_eq!(c.args().collect::<Vec<_>>(), [&b"HSET"[..], b"h", b"a", b"1", b"b", b"2"]);
/// ```
pub trait ToArgs {
    /// Write this value's arguments.
    fn write_args(&self, out: &mut ArgWriter<'_>);

    /// Write this value's arguments, consuming it ([`Cmd::arg`] calls this). The provided
    /// version calls [`ToArgs::write_args`]; owned buffers (`Vec<u8>`, `String`,
    /// [`Bytes`]) override it so that a large one becomes an argument without a copy.
    fn write_args_owned(self, out: &mut ArgWriter<'_>)
    where
        Self: Sized,
    {
        self.write_args(out)
    }
}

impl<T: ToArgs + ?Sized> ToArgs for &T {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        (**self).write_args(out)
    }
}

impl ToArgs for [u8] {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(self)
    }
}

impl<const N: usize> ToArgs for [u8; N] {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(self)
    }
}

impl ToArgs for Vec<u8> {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(self)
    }

    fn write_args_owned(self, out: &mut ArgWriter<'_>) {
        if self.len() >= LARGE_ARG {
            out.write_bytes(Bytes::from(self))
        } else {
            out.write(&self)
        }
    }
}

impl ToArgs for Bytes {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write_bytes(self.clone())
    }

    fn write_args_owned(self, out: &mut ArgWriter<'_>) {
        out.write_bytes(self)
    }
}

impl ToArgs for str {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(self.as_bytes())
    }
}

impl ToArgs for String {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(self.as_bytes())
    }

    fn write_args_owned(self, out: &mut ArgWriter<'_>) {
        if self.len() >= LARGE_ARG {
            out.write_bytes(Bytes::from(self))
        } else {
            out.write(self.as_bytes())
        }
    }
}

macro_rules! int_args {
    ($($t:ty),*) => {$(
        impl ToArgs for $t {
            fn write_args(&self, out: &mut ArgWriter<'_>) {
                let mut buf = [0u8; 40];
                out.write(format_int(*self as i128, &mut buf));
            }
        }
    )*};
}
int_args!(i8, i16, i32, i64, isize, u16, u32, u64, usize);

fn format_int(n: i128, buf: &mut [u8; 40]) -> &[u8] {
    let mut i = buf.len();
    let neg = n < 0;
    let mut u = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

macro_rules! float_args {
    ($($t:ty),*) => {$(
        impl ToArgs for $t {
            /// Finite values in their shortest exact form, infinities as `inf`/`-inf`
            /// (what the server accepts for scores), NaN as `nan`.
            fn write_args(&self, out: &mut ArgWriter<'_>) {
                if self.is_nan() {
                    out.write(b"nan")
                } else if self.is_infinite() {
                    out.write(if *self > 0.0 { b"inf" } else { b"-inf" })
                } else {
                    out.write(format!("{}", self).as_bytes())
                }
            }
        }
    )*};
}
float_args!(f32, f64);

impl ToArgs for bool {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(if *self { b"1" } else { b"0" })
    }
}

impl<T: ToArgs> ToArgs for Option<T> {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        if let Some(v) = self {
            v.write_args(out)
        }
    }
}

macro_rules! seq_args {
    ($($t:ident),*) => {$(
        impl<T: ToArgs> ToArgs for $t<T> {
            fn write_args(&self, out: &mut ArgWriter<'_>) {
                for v in self {
                    v.write_args(out)
                }
            }
        }
    )*};
}
seq_args!(BTreeSet, Vec);

impl<T: ToArgs> ToArgs for [T] {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        for v in self {
            v.write_args(out)
        }
    }
}

/// Arrays of arguments, so `&["a", "b"]` works where several keys are expected (`[u8; N]`
/// stays one binary argument: `u8` is not `ToArgs`).
impl<T: ToArgs, const N: usize> ToArgs for [T; N] {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        for v in self {
            v.write_args(out)
        }
    }
}

impl<T: ToArgs, S> ToArgs for HashSet<T, S> {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        for v in self {
            v.write_args(out)
        }
    }
}

impl<K: ToArgs, V: ToArgs, S> ToArgs for HashMap<K, V, S> {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        for (k, v) in self {
            k.write_args(out);
            v.write_args(out);
        }
    }
}

impl<K: ToArgs, V: ToArgs> ToArgs for BTreeMap<K, V> {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        for (k, v) in self {
            k.write_args(out);
            v.write_args(out);
        }
    }
}

macro_rules! tuple_args {
    ($($name:ident)+) => {
        impl<$($name: ToArgs),+> ToArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn write_args(&self, out: &mut ArgWriter<'_>) {
                let ($($name,)+) = self;
                $($name.write_args(out);)+
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A B);
tuple_args!(A B C);
tuple_args!(A B C D);

#[cfg(test)]
mod tests {
    use crate::cmd::cmd;

    fn args(c: &crate::cmd::Cmd) -> Vec<String> {
        c.args()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn numbers() {
        let c = cmd("X")
            .arg(i64::MIN)
            .arg(u64::MAX)
            .arg(0u8 as u16)
            .arg(-1i8)
            .arg(1.5f64);
        assert_eq!(
            args(&c),
            [
                "X",
                "-9223372036854775808",
                "18446744073709551615",
                "0",
                "-1",
                "1.5"
            ]
        );
        let c = cmd("X")
            .arg(f64::INFINITY)
            .arg(f64::NEG_INFINITY)
            .arg(0.1f64)
            .arg(1e300f64);
        assert_eq!(args(&c)[1..3], ["inf", "-inf"]);
        assert_eq!(args(&c)[3].parse::<f64>().unwrap(), 0.1);
        assert_eq!(args(&c)[4].parse::<f64>().unwrap(), 1e300);
    }

    #[test]
    fn collections() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("a", 1);
        m.insert("b", 2);
        let c = cmd("X")
            .arg(&m)
            .arg(vec!["x", "y"])
            .arg((1, "z"))
            .arg(true)
            .arg(Some("s"));
        assert_eq!(
            args(&c),
            ["X", "a", "1", "b", "2", "x", "y", "1", "z", "1", "s"]
        );
    }
}
