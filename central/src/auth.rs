//! Who may call the API: the admin (password, argon2-hashed) and API tokens (random, only their
//! SHA-256 stored), each with a role. Sensors never use the API: they speak mTLS gRPC.
//!
//! | role | may |
//! |---|---|
//! | Admin | everything |
//! | Analyst | read everything, run detection and dry-runs; change nothing |
//! | Continuous Integration | the detect endpoints only |
//!
//! Checking an argon2 hash costs tens of milliseconds by design; a verified admin password is
//! remembered as its SHA-256 so only the first request of a session pays it.

use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::store::{Backend, Store, Table, WriteBatch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Admin,
    Analyst,
    ContinuousIntegration,
    /// Sensor certificates; never an API role.
    Sensor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().replace(['-', '_', ' '], "").as_str() {
            "admin" => Some(Role::Admin),
            "analyst" => Some(Role::Analyst),
            "ci" | "continuousintegration" => Some(Role::ContinuousIntegration),
            "sensor" => Some(Role::Sensor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Analyst => "Analyst",
            Role::ContinuousIntegration => "Continuous Integration",
            Role::Sensor => "Sensor",
        }
    }
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading anything: Admin, Analyst.
    Read,
    /// Changing anything: Admin.
    Write,
    /// Detection (deployment check, image check): Admin, Analyst, Continuous Integration.
    Detect,
    /// Any API role (who am I).
    Authenticated,
}

impl Access {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Read => matches!(role, Role::Admin | Role::Analyst),
            Access::Write => role == Role::Admin,
            Access::Detect | Access::Authenticated => matches!(
                role,
                Role::Admin | Role::Analyst | Role::ContinuousIntegration
            ),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The token's id when authenticated by token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("credentials required (Authorization: Bearer <token>, or Basic for admin)")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token was revoked")]
    Revoked,
    #[error("storage: {0}")]
    Store(String),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("the admin password is refused: {0}")]
    WeakPassword(String),
    #[error("random source: {0}")]
    Random(String),
    #[error("no token with id '{0}'")]
    NoToken(String),
    #[error("{0} tokens cannot be created: Sensors authenticate with their certificates")]
    SensorToken(&'static str),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdminRecord {
    /// PHC string (argon2id).
    hash: String,
    changed_unix_ms: i64,
}

/// A token as stored and listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_unix_ms: i64,
    pub expires_unix_ms: Option<i64>,
    pub revoked: bool,
    /// Hex SHA-256 of the token.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub hash: String,
}

const ADMIN_KEY: &str = "admin";
/// Tokens start with this, so secret scanners and humans can tell them.
pub const TOKEN_PREFIX: &str = "rpt_";

fn token_key(hash_hex: &str) -> String {
    format!("token/{hash_hex}")
}

fn token_id_key(id: &str) -> String {
    format!("tokenid/{id}")
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|_| Error::Random("the system random source failed".into()))?;
    Ok(buf)
}

use crate::model::now_unix_ms as now_ms;

/// A new random password: 24 URL-safe characters (144 bits), never starting with `-` (which a
/// command line would take for an option: `--password -x…`) or `_`.
fn new_password() -> Result<String, Error> {
    loop {
        let password =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<18>()?);
        if password.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(password);
        }
    }
}

fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// Sets a new admin password and returns it (the only time it is visible).
pub fn reset_admin_password<B: Backend>(store: &Store<B>) -> Result<String, Error> {
    let password = new_password()?;
    let mut batch = WriteBatch::default();
    batch.put(
        Table::Auth,
        ADMIN_KEY,
        &AdminRecord {
            hash: hash_password(&password)?,
            changed_unix_ms: now_ms(),
        },
    )?;
    store.apply(&batch)?;
    store.flush()?;
    Ok(password)
}

/// The shortest admin password [`set_admin_password`] takes.
pub const MIN_ADMIN_PASSWORD: usize = 12;

/// Makes `password` the admin password (given to Central, say from a Kubernetes Secret, rather
/// than generated): stored hashed when it is not the stored one already, so the source stays
/// authoritative across restarts. Returns whether it changed. Refused when shorter than
/// [`MIN_ADMIN_PASSWORD`] characters or with a control character (a stray newline from an
/// editor is trimmed first, by the caller).
pub fn set_admin_password<B: Backend>(store: &Store<B>, password: &str) -> Result<bool, Error> {
    if password.chars().count() < MIN_ADMIN_PASSWORD {
        return Err(Error::WeakPassword(format!(
            "it has {} characters; at least {MIN_ADMIN_PASSWORD} are required",
            password.chars().count()
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::WeakPassword(
            "it contains a control character".to_string(),
        ));
    }
    if let Some(record) = store.get_record::<AdminRecord>(Table::Auth, ADMIN_KEY)?
        && let Ok(parsed) = PasswordHash::new(&record.hash)
        && Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    {
        return Ok(false);
    }
    let mut batch = WriteBatch::default();
    batch.put(
        Table::Auth,
        ADMIN_KEY,
        &AdminRecord {
            hash: hash_password(password)?,
            changed_unix_ms: now_ms(),
        },
    )?;
    store.apply(&batch)?;
    store.flush()?;
    Ok(true)
}

/// On the first start, creates the admin password and returns it; afterwards `None`.
pub fn bootstrap_admin<B: Backend>(store: &Store<B>) -> Result<Option<String>, Error> {
    if store
        .get_record::<AdminRecord>(Table::Auth, ADMIN_KEY)?
        .is_some()
    {
        return Ok(None);
    }
    reset_admin_password(store).map(Some)
}

/// The expiry (unix ms) of a token valid for `seconds` from now.
pub fn expiry_after(seconds: u64) -> i64 {
    now_ms().saturating_add(i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX))
}

/// Creates an API token; returns the token (shown once) and its record.
pub fn create_token<B: Backend>(
    store: &Store<B>,
    name: &str,
    role: Role,
    expires_unix_ms: Option<i64>,
) -> Result<(String, TokenRecord), Error> {
    if role == Role::Sensor {
        return Err(Error::SensorToken(role.as_str()));
    }
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    );
    let hash = sha256_hex(token.as_bytes());
    let record = TokenRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_string(),
        role,
        created_unix_ms: now_ms(),
        expires_unix_ms,
        revoked: false,
        hash: hash.clone(),
    };
    let mut batch = WriteBatch::default();
    batch.put(Table::Auth, &token_key(&hash), &record)?;
    batch.put(Table::Auth, &token_id_key(&record.id), &hash)?;
    store.apply(&batch)?;
    store.flush()?;
    Ok((token, record))
}

pub fn list_tokens<B: Backend>(store: &Store<B>) -> Result<Vec<TokenRecord>, Error> {
    let mut tokens: Vec<TokenRecord> = store.scan_records(Table::Auth, "token/")?;
    tokens.sort_by_key(|t| t.created_unix_ms);
    for t in &mut tokens {
        t.hash.clear();
    }
    Ok(tokens)
}

/// Revokes a token by id; it stops working at once.
pub fn revoke_token<B: Backend>(store: &Store<B>, id: &str) -> Result<TokenRecord, Error> {
    let hash: String = store
        .get_record(Table::Auth, &token_id_key(id))?
        .ok_or_else(|| Error::NoToken(id.to_string()))?;
    let mut record: TokenRecord = store
        .get_record(Table::Auth, &token_key(&hash))?
        .ok_or_else(|| Error::NoToken(id.to_string()))?;
    record.revoked = true;
    let mut batch = WriteBatch::default();
    batch.put(Table::Auth, &token_key(&hash), &record)?;
    store.apply(&batch)?;
    store.flush()?;
    record.hash.clear();
    Ok(record)
}

/// Compares without an early exit, so timing does not tell how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Authenticates `Authorization` header values.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// SHA-256 of the last admin password verified against the current hash, with that hash.
    verified_admin: Mutex<Option<(String, String)>>,
}

impl Authenticator {
    pub fn authenticate<B: Backend>(
        &self,
        store: &Store<B>,
        authorization: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?.trim();
        let (scheme, value) = header.split_once(' ').ok_or(AuthError::Invalid)?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            self.token(store, value)
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| AuthError::Invalid)?;
            let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Invalid)?;
            let (user, password) = decoded.split_once(':').ok_or(AuthError::Invalid)?;
            if user != "admin" {
                return Err(AuthError::Invalid);
            }
            self.admin(store, password)
        } else {
            Err(AuthError::Invalid)
        }
    }

    fn token<B: Backend>(&self, store: &Store<B>, token: &str) -> Result<Principal, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(AuthError::Invalid);
        }
        let record: TokenRecord = store
            .get_record(Table::Auth, &token_key(&sha256_hex(token.as_bytes())))
            .map_err(|e| AuthError::Store(e.to_string()))?
            .ok_or(AuthError::Invalid)?;
        if record.revoked {
            return Err(AuthError::Revoked);
        }
        if record.expires_unix_ms.is_some_and(|e| e <= now_ms()) {
            return Err(AuthError::Expired);
        }
        Ok(Principal {
            name: record.name,
            role: record.role,
            token_id: Some(record.id),
        })
    }

    fn admin<B: Backend>(&self, store: &Store<B>, password: &str) -> Result<Principal, AuthError> {
        let record: AdminRecord = store
            .get_record(Table::Auth, ADMIN_KEY)
            .map_err(|e| AuthError::Store(e.to_string()))?
            .ok_or(AuthError::Invalid)?;
        let presented = sha256_hex(password.as_bytes());
        let cached = self
            .verified_admin
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        let ok = match cached {
            Some((hash, digest)) if hash == record.hash => {
                constant_time_eq(digest.as_bytes(), presented.as_bytes())
            }
            _ => false,
        } || {
            let parsed = PasswordHash::new(&record.hash).map_err(|_| AuthError::Invalid)?;
            let verified = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            if verified && let Ok(mut c) = self.verified_admin.lock() {
                *c = Some((record.hash.clone(), presented));
            }
            verified
        };
        if !ok {
            return Err(AuthError::Invalid);
        }
        Ok(Principal {
            name: "admin".to_string(),
            role: Role::Admin,
            token_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledBackend;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn a_new_password_never_starts_like_an_option() {
        // One in 32 would start with `-` or `_` otherwise: 2,000 without the rule all pass
        // with a chance of about 1 in 10^28.
        for _ in 0..2000 {
            let password = new_password().expect("password");
            assert_eq!(password.len(), 24);
            assert!(
                password.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{password}"
            );
        }
    }

    #[test]
    fn a_given_admin_password_is_set_checked_and_stays_authoritative() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store");
        let auth = Authenticator::default();
        // Refused: too short, or with a control character; nothing is stored.
        for bad in ["short-pw", "twelve chars\n!", ""] {
            assert!(
                matches!(set_admin_password(&store, bad), Err(Error::WeakPassword(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            auth.authenticate(&store, Some(&basic("admin", "short-pw"))),
            Err(AuthError::Invalid)
        );
        // Given on a first start, it is the password; given again, nothing changes.
        let given = "correct horse battery staple";
        assert!(set_admin_password(&store, given).expect("set"));
        assert!(!set_admin_password(&store, given).expect("same again"));
        assert_eq!(bootstrap_admin(&store).expect("bootstrap"), None);
        assert!(
            auth.authenticate(&store, Some(&basic("admin", given)))
                .is_ok()
        );
        // A reset by hand is undone by the given password at the next start.
        let reset = reset_admin_password(&store).expect("reset");
        assert!(set_admin_password(&store, given).expect("restored"));
        assert_eq!(
            auth.authenticate(&store, Some(&basic("admin", &reset))),
            Err(AuthError::Invalid)
        );
        assert!(
            auth.authenticate(&store, Some(&basic("admin", given)))
                .is_ok()
        );
    }

    #[test]
    fn admin_password_and_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store");
        let password = bootstrap_admin(&store)
            .expect("bootstrap")
            .expect("first start");
        assert_eq!(
            bootstrap_admin(&store).expect("again"),
            None,
            "printed once"
        );
        let auth = Authenticator::default();
        let admin = auth
            .authenticate(&store, Some(&basic("admin", &password)))
            .expect("admin");
        assert_eq!(admin.role, Role::Admin);
        // Cached path gives the same answer, and a wrong password is refused either way.
        assert!(
            auth.authenticate(&store, Some(&basic("admin", &password)))
                .is_ok()
        );
        assert_eq!(
            auth.authenticate(&store, Some(&basic("admin", "nope"))),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.authenticate(&store, Some(&basic("root", &password))),
            Err(AuthError::Invalid)
        );
        assert_eq!(auth.authenticate(&store, None), Err(AuthError::Missing));

        // A reset invalidates the old password, cached or not.
        let new = reset_admin_password(&store).expect("reset");
        assert_eq!(
            auth.authenticate(&store, Some(&basic("admin", &password))),
            Err(AuthError::Invalid)
        );
        assert!(
            auth.authenticate(&store, Some(&basic("admin", &new)))
                .is_ok()
        );

        let (token, record) =
            create_token(&store, "ci", Role::ContinuousIntegration, None).expect("token");
        assert!(token.starts_with(TOKEN_PREFIX));
        let raw = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read(e.path()).ok())
            .any(|bytes| bytes.windows(token.len()).any(|w| w == token.as_bytes()));
        assert!(!raw, "the token itself is never stored");
        let who = auth
            .authenticate(&store, Some(&format!("Bearer {token}")))
            .expect("token works");
        assert_eq!(
            (who.role, who.token_id.as_deref()),
            (Role::ContinuousIntegration, Some(record.id.as_str()))
        );
        assert!(list_tokens(&store).expect("list")[0].hash.is_empty());
        revoke_token(&store, &record.id).expect("revoke");
        assert_eq!(
            auth.authenticate(&store, Some(&format!("Bearer {token}"))),
            Err(AuthError::Revoked)
        );
        let (expired, _) =
            create_token(&store, "old", Role::Analyst, Some(now_ms() - 1)).expect("token");
        assert_eq!(
            auth.authenticate(&store, Some(&format!("Bearer {expired}"))),
            Err(AuthError::Expired)
        );
        assert!(matches!(
            create_token(&store, "s", Role::Sensor, None),
            Err(Error::SensorToken(_))
        ));
    }

    #[test]
    fn roles_grant_what_the_table_says() {
        use Access::*;
        use Role::*;
        let table = [
            (Read, [true, true, false, false]),
            (Write, [true, false, false, false]),
            (Detect, [true, true, true, false]),
            (Authenticated, [true, true, true, false]),
        ];
        for (access, expected) in table {
            let got: Vec<bool> = [Admin, Analyst, ContinuousIntegration, Sensor]
                .iter()
                .map(|r| access.allows(*r))
                .collect();
            assert_eq!(got, expected, "{access:?}");
        }
    }
}
