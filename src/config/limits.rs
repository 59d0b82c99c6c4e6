//! Decoder limits given as text (URL parameters and environment variables).

use super::Msg;
use crate::resp::Limits;

/// Set the limit `name` (a URL parameter name) from `value`: a positive whole number
/// without sign or leading zeros.
pub(super) fn set_limit(limits: &mut Limits, name: &str, value: &str) -> Msg<()> {
    let n: usize = match value.parse() {
        Ok(n) if n > 0 && !value.starts_with(['0', '+']) => n,
        _ => {
            return Err(format!(
                "invalid value '{}' (expected a positive whole number)",
                value.escape_debug()
            ))
        }
    };
    match name {
        "max_bulk_len" => limits.max_bulk_len = n,
        "max_aggregate_len" => limits.max_aggregate_len = n,
        "max_depth" => limits.max_depth = n,
        _ => limits.max_line_len = n,
    }
    Ok(())
}
