//! The `record-store` destination.

use super::{PutOutcome, RecordStore, StoreError};
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
        self.deliver_all(vec![record.clone()])
            .await
            .pop()
            .unwrap_or_else(|| Err(DeliveryError::retryable("record store returned no result")))
    }

    /// [`RecordStoreSink::deliver`] for a whole claim, in one transaction: one fsync for the
    /// claim instead of one per record (docs/benchmarks.md section 20). One result per record,
    /// in order.
    pub async fn deliver_all(&self, records: Vec<Record>) -> Vec<Result<(), DeliveryError>> {
        let ids: Vec<String> = records.iter().map(|r| r.envelope.id.clone()).collect();
        match self.store.put_all(records).await {
            Ok(outcomes) => ids
                .iter()
                .zip(outcomes)
                .map(|(id, o)| outcome(id, o))
                .collect(),
            Err(e) => {
                let error = DeliveryError::retryable(e.to_string());
                vec![Err(error); ids.len()]
            }
        }
    }
}

fn outcome(id: &str, put: Result<PutOutcome, StoreError>) -> Result<(), DeliveryError> {
    match put {
        Ok(PutOutcome::Stored { version, state }) => {
            tracing::debug!(record = %id, version, state, "record stored");
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
