//! The `record-store` destination.

use super::{PutOutcome, RecordStore};
use crate::deliver::DeliveryError;
use crate::record::Record;

/// Delivers records into a [`RecordStore`].
#[derive(Debug, Clone)]
pub struct RecordStoreSink {
    store: RecordStore,
}

impl RecordStoreSink {
    pub fn new(store: RecordStore) -> RecordStoreSink {
        RecordStoreSink { store }
    }

    pub fn store(&self) -> &RecordStore {
        &self.store
    }

    /// Stores the record. A refusal by the feed gate (R1, R2) is permanent: the journal
    /// dead-letters the entry with the reason, so the record is kept and can be replayed once
    /// the identity is qualified or the opposition lifted. Database errors are retried.
    pub async fn deliver(&self, record: &Record) -> Result<(), DeliveryError> {
        match self.store.put(record.clone()).await {
            Ok(PutOutcome::Stored { version, state }) => {
                tracing::debug!(record = %record.envelope.id, version, state, "record stored");
                Ok(())
            }
            Ok(PutOutcome::Duplicate) => Ok(()),
            Ok(PutOutcome::Refused(reason)) => Err(DeliveryError::permanent(format!(
                "record store refused the record ({}: {}): {reason}",
                reason.rule(),
                reason.code()
            ))),
            Err(e) => Err(DeliveryError::retryable(e.to_string())),
        }
    }
}
