//! The commands of [`Commands`](super::Commands) as builder methods of [`Pipeline`], from
//! the same definitions (see `define.rs`).

use super::*;
use crate::cmd::Pipeline;

impl Pipeline {
    string_commands!(commands_pipeline);
    key_commands!(commands_pipeline);
    hash_commands!(commands_pipeline);
    list_commands!(commands_pipeline);
    set_commands!(commands_pipeline);
    zset_commands!(commands_pipeline);
    server_commands!(commands_pipeline);
    stream_commands!(commands_pipeline);
}
