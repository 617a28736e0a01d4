//! Identifier newtypes. Cheap to clone (`Arc<str>`), validated on construction from user input.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// Longest id accepted (the design's `VARCHAR(64)` columns).
pub const MAX_ID_LEN: usize = 64;

fn validate_id(field: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_ID_LEN} bytes, got {}", s.len()),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(Error::invalid(
            field,
            format!("'{s}' contains {c:?}; allowed are ASCII letters, digits and - _ . :"),
        ));
    }
    Ok(())
}

/// A UUID v7 (time-ordered) whose random bits come from a fast user-space generator: ids need to be
/// unique, not unpredictable, and a system call per id is a measurable cost at 100,000 ids a second.
fn new_uuid_v7() -> uuid::Uuid {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let random: [u8; 10] = fastrand::u128(..).to_le_bytes()[..10]
        .try_into()
        .expect("10 bytes");
    uuid::Builder::from_unix_timestamp_millis(ms, &random).into_uuid()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Eq, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                // Ids are cloned far more than created: most comparisons are of the same allocation.
                Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
            }
        }

        // Equality is content equality (the pointer check is a shortcut), so hashing the content agrees.
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state)
            }
        }

        impl $name {
            /// Validates `s` (1–64 bytes of ASCII letters, digits and `- _ . :`) and wraps it.
            pub fn new(s: impl AsRef<str>) -> Result<Self> {
                let s = s.as_ref();
                validate_id($field, s)?;
                Ok(Self(Arc::from(s)))
            }

            /// Wraps `s` without validation: for ids read back from a trusted store.
            pub fn from_trusted(s: impl Into<Arc<str>>) -> Self {
                Self(s.into())
            }

            /// A new unique id: the prefix and a time-ordered UUID (v7), so ids sort by creation.
            pub fn generate() -> Self {
                let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
                let hex = new_uuid_v7().simple().encode_lower(&mut buf);
                let mut s = String::with_capacity($prefix.len() + 1 + hex.len());
                s.push_str($prefix);
                s.push('-');
                s.push_str(hex);
                Self(Arc::from(s))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_ID_LEN))
                    .pattern(Some("^[A-Za-z0-9_.:-]+$"))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&*s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// Identifies a job (a definition that fires tasks). The design's `jobs.job_id`.
    JobId,
    "job_id",
    "job"
);
id_type!(
    /// Identifies one fire of a job; all attempts of that fire share it (`(task_id, attempt)` is one attempt).
    TaskId,
    "task_id",
    "task"
);
id_type!(
    /// Identifies an executor process. The design's `executors.executor_id`.
    ExecutorId,
    "executor_id",
    "executor"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_validate() {
        assert!(JobId::new("job-1.a_b:c").is_ok());
        let e = JobId::new("").unwrap_err().to_string();
        assert!(e.contains("job_id") && e.contains("empty"), "{e}");
        let e = JobId::new("a b").unwrap_err().to_string();
        assert!(e.contains("' '"), "{e}");
        let e = ExecutorId::new("x".repeat(65)).unwrap_err().to_string();
        assert!(e.contains("executor_id") && e.contains("64"), "{e}");
    }

    #[test]
    fn generated_ids_are_unique_sortable_and_valid() {
        let a = TaskId::generate();
        let b = TaskId::generate();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("task-"));
        assert!(TaskId::new(a.as_str()).is_ok());
        assert!(a.as_str().len() <= MAX_ID_LEN);
    }

    #[test]
    fn serde_is_a_plain_string_and_validates() {
        let id = JobId::new("j1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"j1\"");
        let back: JobId = serde_json::from_str("\"j1\"").unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<JobId>("\"bad id\"").is_err());
    }
}
