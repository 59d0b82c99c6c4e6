//! The queue's Lua scripts (the `.lua` files beside this one), each with the shared
//! helpers of `common.lua` in front.

use std::sync::OnceLock;

use crate::script::Script;

macro_rules! with_common {
    ($file:literal) => {
        concat!(include_str!("common.lua"), "\n", include_str!($file))
    };
}

pub(crate) struct Scripts {
    pub(crate) reserve: Script,
    pub(crate) ack: Script,
    pub(crate) nack: Script,
    pub(crate) push_delayed: Script,
    pub(crate) extend: Script,
    pub(crate) reap: Script,
    pub(crate) stats: Script,
    pub(crate) requeue: Script,
    pub(crate) purge: Script,
}

pub(crate) fn scripts() -> &'static Scripts {
    static S: OnceLock<Scripts> = OnceLock::new();
    S.get_or_init(|| Scripts {
        reserve: Script::new(with_common!("reserve.lua")),
        ack: Script::new(with_common!("ack.lua")),
        nack: Script::new(with_common!("nack.lua")),
        push_delayed: Script::new(with_common!("push_delayed.lua")),
        extend: Script::new(with_common!("extend.lua")),
        reap: Script::new(with_common!("reap.lua")),
        stats: Script::new(with_common!("stats.lua")),
        requeue: Script::new(with_common!("requeue.lua")),
        purge: Script::new(with_common!("purge.lua")),
    })
}
