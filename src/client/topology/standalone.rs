//! One server: every attempt of every call goes to the writer endpoint.

use super::{Call, Previous, Topology};
use crate::client::Target;
use crate::error::Result;

/// One server behind the client.
pub(crate) struct Standalone {
    pub(crate) writer: Target,
}

impl Topology for Standalone {
    type Node<'t> = &'t Target;

    const PERMIT_PER_CALL: bool = true;
    const FOLLOWS_REDIRECTS: bool = false;

    #[inline]
    fn choose<'t>(
        &'t self,
        _call: &Call,
        _previous: Option<Previous<'_, &'t Target>>,
    ) -> Result<&'t Target> {
        Ok(&self.writer)
    }
}
