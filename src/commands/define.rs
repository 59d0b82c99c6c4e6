//! How a command is defined once and becomes both a method of
//! [`Commands`](super::Commands) and a method of [`Pipeline`](crate::Pipeline).
//!
//! Each family file (`strings.rs`, `hashes.rs`, ...) holds a macro listing its commands:
//!
//! ```text
//! /// `HGET key field`: the value, `None` when the field (or key) does not exist.
//! fn hget<K: ToArgs, F: ToArgs>(key: K, field: F) -> RV { cmd("HGET").arg(key).arg(field) }
//! /// `HLEN key`: the number of fields.
//! fn hlen<K: ToArgs>(key: K) -> u64 { cmd("HLEN").arg(key) }
//! /// `TTL key`: the remaining time to live.
//! fn ttl<K: ToArgs>(key: K) -> Ttl = |n: i64| Ttl::from_reply(n, false); { cmd("TTL").arg(key) }
//! ```
//!
//! The block builds the command; it is the only place that does. The return says how
//! [`Commands`](super::Commands) converts the reply: `RV` makes the method generic over the
//! result type (any [`FromValue`](crate::FromValue)); a concrete type is converted to
//! directly; `Type = |raw: Raw| expr;` converts to `Raw` and then maps it. In a pipeline
//! every command's reply converts into whatever type the pipeline's query asks for.
//!
//! `commands_trait!` expands such a list into trait methods, `commands_pipeline!` into
//! builder methods of `Pipeline` (see `pipeline.rs`).

/// Expand command definitions into methods of the `Commands` trait.
macro_rules! commands_trait {
    () => {};
    (
        $(#[$m:meta])*
        fn $name:ident <$($g:ident : $gb:path),*> ($($a:ident : $t:ty),*) -> RV $body:block
        $($rest:tt)*
    ) => {
        $(#[$m])*
        fn $name<$($g: $gb,)* RV: FromValue>(&self, $($a: $t),*) -> Result<RV> {
            run(self, &$body)
        }
        commands_trait!($($rest)*);
    };
    (
        $(#[$m:meta])*
        fn $name:ident <$($g:ident : $gb:path),*> ($($a:ident : $t:ty),*) -> $ret:ty = $post:expr ;
        $body:block
        $($rest:tt)*
    ) => {
        $(#[$m])*
        fn $name<$($g: $gb),*>(&self, $($a: $t),*) -> Result<$ret> {
            ($post)(run(self, &$body)?)
        }
        commands_trait!($($rest)*);
    };
    (
        $(#[$m:meta])*
        fn $name:ident <$($g:ident : $gb:path),*> ($($a:ident : $t:ty),*) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $(#[$m])*
        fn $name<$($g: $gb),*>(&self, $($a: $t),*) -> Result<$ret> {
            run(self, &$body)
        }
        commands_trait!($($rest)*);
    };
}

/// Expand command definitions into builder methods of `Pipeline`.
macro_rules! commands_pipeline {
    () => {};
    (
        $(#[$m:meta])*
        fn $name:ident <$($g:ident : $gb:path),*> ($($a:ident : $t:ty),*) -> RV $body:block
        $($rest:tt)*
    ) => {
        commands_pipeline!(@one $name [$($g: $gb),*] [$($a: $t),*] $body);
        commands_pipeline!($($rest)*);
    };
    (
        $(#[$m:meta])*
        fn $name:ident <$($g:ident : $gb:path),*> ($($a:ident : $t:ty),*) -> $ret:ty = $post:expr ;
        $body:block
        $($rest:tt)*
    ) => {
        commands_pipeline!(@one $name [$($g: $gb),*] [$($a: $t),*] $body);
        commands_pipeline!($($rest)*);
    };
    (
        $(#[$m:meta])*
        fn $name:ident <$($g:ident : $gb:path),*> ($($a:ident : $t:ty),*) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        commands_pipeline!(@one $name [$($g: $gb),*] [$($a: $t),*] $body);
        commands_pipeline!($($rest)*);
    };
    (@one $name:ident [$($g:ident : $gb:path),*] [$($a:ident : $t:ty),*] $body:block) => {
        #[doc = concat!(
            "Queue the command [`Commands::", stringify!($name), "`](crate::Commands::",
            stringify!($name), ") sends. Its reply converts into the type the query asks for."
        )]
        #[allow(clippy::too_many_arguments)]
        pub fn $name<$($g: $gb),*>(self, $($a: $t),*) -> Pipeline {
            self.cmd($body)
        }
    };
}
