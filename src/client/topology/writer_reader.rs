//! A writer (primary) and a reader (replica) endpoint: read-only calls go to the reader
//! as their `ReadFrom` hint allows (`ReaderWhenInSync`: only while its replication link
//! is up), everything else to the writer. A retry stays on the endpoint of the first
//! attempt.

use super::{Call, Previous, Reads, Topology};
use crate::client::reader_sync::ReaderSync;
use crate::client::Target;
use crate::error::Result;

/// A writer and a reader endpoint behind the client.
pub(crate) struct WriterReader {
    pub(crate) writer: Target,
    pub(crate) reader: Target,
    /// Whether the reader is in sync, for [`Reads::ReplicaInSync`].
    pub(crate) sync: ReaderSync,
}

impl WriterReader {
    /// The endpoint for a call's first attempt.
    #[inline]
    fn route(&self, reads: Reads) -> &Target {
        match reads {
            Reads::Primary => &self.writer,
            Reads::Replica => &self.reader,
            Reads::ReplicaInSync if self.sync.in_sync(&self.reader.pool) => &self.reader,
            Reads::ReplicaInSync => &self.writer,
        }
    }
}

impl Topology for WriterReader {
    type Node<'t> = &'t Target;

    const PERMIT_PER_CALL: bool = true;
    const FOLLOWS_REDIRECTS: bool = false;

    #[inline]
    fn choose<'t>(
        &'t self,
        call: &Call,
        previous: Option<Previous<'_, &'t Target>>,
    ) -> Result<&'t Target> {
        match previous.and_then(|p| p.node) {
            Some(same) => Ok(*same),
            None => Ok(self.route(call.reads)),
        }
    }
}
