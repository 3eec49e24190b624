use crate::storage::StorageError;

/// What can go wrong in the product's rules. The HTTP layer maps each to a status and an opaque,
/// user-safe message; `Internal` and `Storage` causes go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("not found")]
    NotFound,
    #[error("sign in first")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(&'static str),
    /// Bad input, with the field and a message fit to show the user.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("{0}")]
    Conflict(String),
    /// Locked out (PIN) or rate limited; try again after this many seconds.
    #[error("locked for {retry_after_seconds} more seconds")]
    Locked { retry_after_seconds: u64 },
    #[error("storage failed")]
    Storage(#[from] StorageError),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field, message: message.into() }
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
