//! Kafka errors as jobsched's error kinds, in one place.

use jobsched::Error;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

pub(crate) const BACKEND: &str = "kafka";

/// Converts an error of a Kafka call made while `doing` something. Anything about reaching the brokers
/// is retryable (`Unavailable`); a message the brokers refuse for its size is `Invalid`.
pub(crate) fn kafka(e: KafkaError, doing: &str) -> Error {
    // A client librdkafka will not make is a configuration error (a `kafka_client` setting), not an
    // outage: say which, and what this build lacks.
    if matches!(
        e,
        KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..)
    ) {
        let why = e.to_string();
        let hint = if why.contains("not available at build time") {
            " (this build has no TLS or SCRAM support: build jobsched with `--features kafka-tls`, \
             which needs the system's OpenSSL)"
        } else {
            ""
        };
        return Error::invalid("kafka_client", format!("{doing}: {why}{hint}"));
    }
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

#[cfg(test)]
mod tests {
    use crate::{ClusterKey, KafkaConfig, KafkaDispatcher};

    /// Client settings reach librdkafka: SASL PLAIN is in every build; TLS only with the `tls` feature,
    /// and without it the error says how to get it.
    #[tokio::test]
    async fn security_settings_pass_through_to_librdkafka() {
        let connect = |props: &[(&str, &str)]| {
            let mut c = KafkaConfig::new("127.0.0.1:1").with_cluster_key(ClusterKey::generate());
            for (k, v) in props {
                c = c.with_client_property(*k, *v);
            }
            KafkaDispatcher::connect(c)
        };
        let plain = connect(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ])
        .await
        .unwrap_err();
        assert!(
            plain.is_retryable(),
            "made the client, found no broker: {plain}"
        );
        let bad = connect(&[("security.protocol", "carrier-pigeon")])
            .await
            .unwrap_err();
        assert!(
            !bad.is_retryable() && bad.to_string().contains("security.protocol"),
            "{bad}"
        );
        let tls = connect(&[("security.protocol", "ssl")]).await.unwrap_err();
        if cfg!(feature = "tls") {
            assert!(tls.is_retryable(), "{tls}");
        } else {
            assert!(tls.to_string().contains("--features kafka-tls"), "{tls}");
        }
    }
}
