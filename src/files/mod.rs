//! Files and batches passed through to OpenAI and Azure: forms, where a call goes, a key's
//! lists, and a completed batch's cost.

pub mod batch_cost;
pub mod listing;
pub mod multipart;
pub mod select;

/// The two kinds of object the gateway records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An uploaded file, or a batch's output or error file.
    File,
    /// A batch.
    Batch,
}

impl Kind {
    /// Its name in the objects table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Batch => "batch",
        }
    }

    /// Its name in OpenAI's "not found" message (`No such File object: ...`).
    pub fn object_name(self) -> &'static str {
        match self {
            Self::File => "File",
            Self::Batch => "Batch",
        }
    }
}
