//! Kafka errors as jobsched's error kinds, in one place.

use jobsched::Error;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

pub(crate) const BACKEND: &str = "kafka";

/// Converts an error of a Kafka call made while `doing` something. Anything about reaching the brokers
/// is retryable (`Unavailable`); a message the brokers refuse for its size is `Invalid`.
pub(crate) fn kafka(e: KafkaError, doing: &str) -> Error {
    if let Some(code) = e.rdkafka_error_code() {
        if matches!(
            code,
            RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize
        ) {
            return Error::invalid("message", format!("{doing}: the brokers refuse it: {e}"));
        }
    }
    Error::Unavailable {
        backend: BACKEND,
        message: format!("{doing}: {e}"),
        source: Some(Box::new(e)),
    }
}
