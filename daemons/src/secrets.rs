//! Secret job params: encrypted at rest with XChaCha20-Poly1305 (RustCrypto), never shown by the API
//! (`"***"`), opened only on the executor, just before the task's environment is built.
//!
//! * A client marks a param secret by giving it as `{"secret": "value"}`; the scheduler stores
//!   `jobsched:sealed:v1:<key id>:<base64url(nonce ‖ ciphertext)>` in its place. The key id, the job id
//!   and the param name are bound to the ciphertext (associated data), so a sealed value cannot be moved
//!   to another job or another param.
//! * Sending `"***"` back for a param keeps its stored sealed value (what an edit form does).
//! * The keyring is a file of `<key id> <base64 key>` lines, the last one current (0600). `jobsched
//!   secrets rotate` appends a new key and re-seals every job's secrets; older keys stay so that what
//!   they sealed (history, queued tasks) still opens. Processes re-read the file when it changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use jobsched::handler::{ExecError, Outcome, TaskContext, TaskHandler};
use jobsched::{Error, Params, Task};
use serde_json::Value;

/// What a sealed value starts with.
pub const SEALED_PREFIX: &str = "jobsched:sealed:v1:";
/// How a secret value is shown.
pub const REDACTED: &str = "***";
/// The keyring's file name in a data directory.
pub const KEYRING_FILE: &str = "secret.key";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// True if `v` is a sealed value.
pub fn is_sealed(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with(SEALED_PREFIX))
}

/// `params` with every sealed value shown as `"***"`.
pub fn redact(params: &Params) -> Params {
    params
        .iter()
        .map(|(k, v)| {
            let v = if is_sealed(v) {
                Value::String(REDACTED.to_owned())
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// True if any value of `params` is given as secret or sealed.
pub fn has_secrets(params: &Params) -> bool {
    params
        .values()
        .any(|v| is_sealed(v) || secret_input(v).is_some())
}

/// The clear value of a `{"secret": "value"}` input.
fn secret_input(v: &Value) -> Option<&str> {
    let o = v.as_object()?;
    (o.len() == 1).then(|| o.get("secret")?.as_str()).flatten()
}

#[derive(Debug)]
struct Loaded {
    modified: Option<SystemTime>,
    /// `(key id, key)`, oldest first; the last one seals.
    keys: Vec<(String, [u8; 32])>,
}

/// The keys of a keyring file.
pub struct Keyring {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("keys", &"***")
            .finish()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn parse_keyring(path: &Path, text: &str) -> Result<Vec<(String, [u8; 32])>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("{} line {}: {why}", path.display(), n + 1);
        let (id, key) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected '<key id> <base64 key>'"))?;
        let raw = B64
            .decode(key.trim())
            .map_err(|e| bad(&format!("the key is not base64url: {e}")))?;
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| bad("a key is 32 bytes (43 base64url characters)"))?;
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad("a key id is letters, digits and '-'"));
        }
        if keys.iter().any(|(k, _)| k == id) {
            return Err(bad(&format!(
                "the key id '{id}' stands twice: values sealed with one could not be opened"
            )));
        }
        keys.push((id.to_owned(), raw));
    }
    if keys.is_empty() {
        return Err(format!("{} holds no key", path.display()));
    }
    Ok(keys)
}

/// A new key line: an id from the current time and 32 random bytes.
fn new_key_line() -> String {
    let mut raw = [0u8; 32];
    crate::auth::random_bytes(&mut raw);
    // The time orders ids for a reader; the random part keeps two keys made in one millisecond apart.
    let tag = crate::auth::random_hex::<4>();
    let id = format!("k{}-{tag}", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"));
    format!("{id} {}\n", B64.encode(raw))
}

/// How [`write_private`] opens its file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// A file that must not exist yet.
    New,
    /// Created or truncated.
    Replace,
    /// Created or appended to.
    Append,
}

/// Writes `text` to a file readable by its owner only.
pub(crate) fn write_private(path: &Path, text: &str, how: Write) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(how != Write::New)
        .create_new(how == Write::New)
        .append(how == Write::Append)
        .write(true)
        .truncate(how == Write::Replace)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

impl Keyring {
    /// Reads the keyring at `path`.
    pub fn open(path: &Path) -> Result<Keyring, String> {
        let keyring = Keyring {
            path: path.to_owned(),
            loaded: RwLock::new(Loaded {
                modified: None,
                keys: Vec::new(),
            }),
        };
        keyring.reload()?;
        Ok(keyring)
    }

    /// Reads the keyring at `path`, creating it with one new key if it does not exist.
    pub fn open_or_create(path: &Path) -> Result<Keyring, String> {
        if !path.exists() {
            write_private(path, &new_key_line(), Write::Replace)
                .map_err(|e| format!("cannot create the keyring {}: {e}", path.display()))?;
            tracing::info!(keyring = %path.display(), "generated the key for secret job params");
        }
        Keyring::open(path)
    }

    /// Appends a new key, which seals from then on; returns its id.
    pub fn add_key(&self) -> Result<String, String> {
        let line = new_key_line();
        write_private(&self.path, &line, Write::Append)
            .map_err(|e| format!("cannot write the keyring {}: {e}", self.path.display()))?;
        self.reload()?;
        Ok(line.split_whitespace().next().unwrap_or("").to_owned())
    }

    fn reload(&self) -> Result<(), String> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("cannot read the keyring {}: {e}", self.path.display()))?;
        let keys = parse_keyring(&self.path, &text)?;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Loaded {
            modified: modified(&self.path),
            keys,
        };
        Ok(())
    }

    /// Re-reads the file if it changed since it was read (a rotation by another process).
    fn refresh(&self) {
        let changed = modified(&self.path)
            != self
                .loaded
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .modified;
        if changed && let Err(e) = self.reload() {
            tracing::warn!(error = %e, "keeping the keys read before");
        }
    }

    fn key(&self, id: Option<&str>) -> Option<(String, [u8; 32])> {
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        match id {
            None => loaded.keys.last().cloned(),
            Some(id) => loaded.keys.iter().find(|(k, _)| k == id).cloned(),
        }
    }

    /// The id of the key that seals now.
    pub fn current_id(&self) -> String {
        self.refresh();
        self.key(None).map(|(id, _)| id).unwrap_or_default()
    }

    /// Seals `clear` as the value of param `name` of job `job` with the current key.
    pub fn seal(&self, job: &str, name: &str, clear: &str) -> String {
        self.refresh();
        let (id, key) = self.key(None).expect("a keyring holds a key");
        let mut nonce = [0u8; 24];
        crate::auth::random_bytes(&mut nonce);
        let aad = format!("{id}:{job}:{name}");
        let ct = XChaCha20Poly1305::new(&key.into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: clear.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("encryption of a short value cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend(ct);
        format!("{SEALED_PREFIX}{id}:{}", B64.encode(blob))
    }

    /// The clear value of a sealed value of param `name` of job `job`; the error says what is missing.
    pub fn open_value(&self, job: &str, name: &str, sealed: &str) -> Result<String, String> {
        let rest = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| format!("param '{name}' is not a sealed value"))?;
        let (id, blob) = rest
            .split_once(':')
            .ok_or_else(|| format!("param '{name}' is a damaged sealed value"))?;
        let (_, key) = match self.key(Some(id)) {
            Some(k) => k,
            None => {
                self.refresh();
                self.key(Some(id)).ok_or_else(|| {
                    format!(
                        "param '{name}' is encrypted with key '{id}', which is not in the keyring {} \
                         (give every scheduler and executor the same keyring file)",
                        self.path.display()
                    )
                })?
            }
        };
        let blob = B64
            .decode(blob)
            .map_err(|_| format!("param '{name}' is a damaged sealed value"))?;
        if blob.len() < 24 {
            return Err(format!("param '{name}' is a damaged sealed value"));
        }
        let (nonce, ct) = blob.split_at(24);
        let aad = format!("{id}:{job}:{name}");
        let clear = XChaCha20Poly1305::new(&key.into())
            .decrypt(
                &XNonce::try_from(nonce)
                    .map_err(|_| format!("param '{name}' is a damaged sealed value"))?,
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                format!("param '{name}' does not decrypt with key '{id}': it was changed or moved")
            })?;
        String::from_utf8(clear).map_err(|_| format!("param '{name}' is not text"))
    }

    /// Seals again with the current key every sealed value of job `job`'s `params` made with another key;
    /// true if any changed.
    pub fn reseal(&self, job: &str, params: &mut Params) -> Result<bool, String> {
        let current = self.current_id();
        let mut changed = false;
        for (name, v) in params.iter_mut() {
            let Some(s) = v.as_str().filter(|s| s.starts_with(SEALED_PREFIX)) else {
                continue;
            };
            if s[SEALED_PREFIX.len()..].starts_with(&format!("{current}:")) {
                continue;
            }
            let clear = self.open_value(job, name, s)?;
            *v = Value::String(self.seal(job, name, &clear));
            changed = true;
        }
        Ok(changed)
    }
}

/// Seals the secret inputs of job `job`'s `params` (`{"secret": "value"}`), and puts back the stored
/// sealed value of `stored` for every `"***"`. Errors name the param.
pub fn seal_params(
    keyring: Option<&Keyring>,
    field: &str,
    job: &str,
    params: &mut Params,
    stored: Option<&Params>,
) -> jobsched::Result<()> {
    for (name, v) in params.iter_mut() {
        let at = || format!("{field}.{name}");
        if let Some(clear) = secret_input(v) {
            let keyring = keyring.ok_or_else(|| {
                Error::invalid(
                    at(),
                    "secret params need the secret keyring: start this scheduler with --secret-key-file \
                     (JOBSCHED_SECRET_KEY_FILE)",
                )
            })?;
            *v = Value::String(keyring.seal(job, name, clear));
        } else if v.as_str() == Some(REDACTED) {
            match stored.and_then(|p| p.get(name)).filter(|s| is_sealed(s)) {
                Some(s) => *v = s.clone(),
                None => {
                    return Err(Error::invalid(
                        at(),
                        "'***' stands for a stored secret value, and there is none: give the value as \
                         {\"secret\": \"…\"}",
                    ));
                }
            }
        } else if is_sealed(v) {
            return Err(Error::invalid(
                at(),
                "a sealed value cannot be given; give the clear value as {\"secret\": \"…\"}",
            ));
        }
    }
    Ok(())
}

/// A handler that opens a task's sealed params before its inner handler runs (on the executor, so clear
/// values exist only in the task's process and its environment).
pub struct Unseal {
    inner: Arc<dyn TaskHandler>,
    keyring: Option<Arc<Keyring>>,
}

impl Unseal {
    /// `inner`, with sealed params opened with `keyring`.
    pub fn new(inner: Arc<dyn TaskHandler>, keyring: Option<Arc<Keyring>>) -> Unseal {
        Unseal { inner, keyring }
    }
}

#[async_trait]
impl TaskHandler for Unseal {
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        if !task.params.values().any(is_sealed) {
            return self.inner.execute(ctx, task).await;
        }
        let fail = |message: String| ExecError::Failed {
            message,
            output: String::new(),
            stderr: String::new(),
            exit_code: 1,
        };
        let keyring = self.keyring.as_ref().ok_or_else(|| {
            fail(
                "the task has secret params and this executor has no keyring: start it with \
                 --secret-key-file"
                    .to_owned(),
            )
        })?;
        let mut open = task.clone();
        let mut clear = Vec::new();
        for (name, v) in open.params.iter_mut() {
            if let Some(s) = v.as_str().filter(|s| s.starts_with(SEALED_PREFIX)) {
                let value = keyring
                    .open_value(task.job_id.as_str(), name, s)
                    .map_err(fail)?;
                clear.push(value.clone());
                *v = Value::String(value);
            }
        }
        let mut result = self.inner.execute(ctx, &open).await;
        // What the task printed of its secrets is masked, as CI systems do, so a `set -x` or an echo
        // does not put them in the stored output. Values shorter than 4 characters would mask too much.
        clear.retain(|v| v.chars().count() >= 4);
        // Longest first, so a secret that contains another is masked whole.
        clear.sort_by_key(|v| std::cmp::Reverse(v.len()));
        if !clear.is_empty() {
            let mask = |text: &mut String| {
                for v in &clear {
                    if text.contains(v.as_str()) {
                        *text = text.replace(v.as_str(), REDACTED);
                    }
                }
            };
            match &mut result {
                Ok(o) => {
                    mask(&mut o.output);
                    mask(&mut o.stderr);
                }
                Err(ExecError::Failed {
                    output,
                    stderr,
                    message,
                    ..
                }) => {
                    mask(output);
                    mask(stderr);
                    mask(message);
                }
                Err(ExecError::Cancelled { output, stderr, .. }) => {
                    mask(output);
                    mask(stderr);
                }
                Err(ExecError::RetryAfter { message, .. } | ExecError::Abort { message, .. }) => {
                    mask(message);
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> (PathBuf, Keyring) {
        let dir = std::env::temp_dir().join(format!("jobsched-keys-{:x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(KEYRING_FILE);
        let k = Keyring::open_or_create(&path).unwrap();
        (dir, k)
    }

    #[test]
    fn sealed_values_open_only_under_their_name_and_survive_rotation() {
        let (dir, k) = keyring();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(KEYRING_FILE))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let sealed = k.seal("j1", "password", "hunter2 hunter2");
        assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("hunter2"));
        assert_eq!(
            k.open_value("j1", "password", &sealed).unwrap(),
            "hunter2 hunter2"
        );
        let moved = k.open_value("j1", "other", &sealed).unwrap_err();
        assert!(moved.contains("changed or moved"), "{moved}");
        let moved = k.open_value("j2", "password", &sealed).unwrap_err();
        assert!(moved.contains("changed or moved"), "{moved}");
        let old_id = k.current_id();
        let new_id = k.add_key().unwrap();
        assert_ne!(old_id, new_id);
        assert_eq!(
            k.open_value("j1", "password", &sealed).unwrap(),
            "hunter2 hunter2"
        );
        let mut params = Params::new();
        params.insert("password".into(), Value::String(sealed.clone()));
        params.insert("plain".into(), Value::from(3));
        assert!(k.reseal("j1", &mut params).unwrap());
        let resealed = params["password"].as_str().unwrap();
        assert!(resealed.contains(&new_id));
        assert!(
            !k.reseal("j1", &mut params).unwrap(),
            "already under the current key"
        );
        assert_eq!(redact(&params)["password"], REDACTED);
        assert_eq!(redact(&params)["plain"], 3);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn keys_made_at_once_have_distinct_ids_and_a_repeated_id_is_refused() {
        let (dir, k) = keyring();
        let ids: Vec<String> = (0..5).map(|_| k.add_key().unwrap()).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        let line = new_key_line();
        let text = format!("{line}{line}");
        let e = parse_keyring(&dir.join("dup"), &text).unwrap_err();
        assert!(e.contains("stands twice"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn inputs_are_sealed_and_placeholders_keep_the_stored_value() {
        let (dir, k) = keyring();
        let mut stored = Params::new();
        stored.insert(
            "token".into(),
            Value::String(k.seal("j1", "token", "s3cret")),
        );
        let mut given: Params =
            serde_json::from_str(r#"{"token": "***", "pw": {"secret": "abc"}, "region": "eu"}"#)
                .unwrap();
        seal_params(Some(&k), "params", "j1", &mut given, Some(&stored)).unwrap();
        assert_eq!(given["token"], stored["token"]);
        assert!(is_sealed(&given["pw"]));
        assert_eq!(given["region"], "eu");
        let mut orphan: Params = serde_json::from_str(r#"{"x": "***"}"#).unwrap();
        let e = seal_params(Some(&k), "params", "j1", &mut orphan, None).unwrap_err();
        assert!(e.to_string().contains("params.x"), "{e}");
        let mut secret: Params = serde_json::from_str(r#"{"pw": {"secret": "abc"}}"#).unwrap();
        let e = seal_params(None, "params", "j1", &mut secret, None).unwrap_err();
        assert!(e.to_string().contains("--secret-key-file"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }
}
