//! Signing a statement with an SSH key, and verifying who signed it.
//!
//! A signature is an SSH signature ("SSHSIG", as `ssh-keygen -Y sign` writes it) over
//! [`Statement::to_bytes`] in the namespace [`super::NAMESPACE`] (or [`super::JOURNAL_NAMESPACE`] for a journal anchor), hashed with SHA-512 like
//! `ssh-keygen` does by default. A private key file signs directly; a public key file signs
//! through ssh-agent, which is also how FIDO security keys sign.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ssh_agent_client_rs::{Client, Identity};
use ssh_key::private::{KeypairData, RsaKeypair};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use chrono::{DateTime, Utc};

use super::{AllowedSigners, IdentityError, Statement, namespace_of};

/// The `format` field of a signed statement in JSON: the file `--sign-only -o FILE` writes.
pub const SIGNED_FORMAT: &str = "drctl-signed-decision/v1";

/// A statement and its armored SSH signature.
///
/// In JSON (see [`Signed::to_json`]) it is an object with `format` ([`SIGNED_FORMAT`]),
/// `statement` and `signature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "SignedFile", try_from = "SignedFile")]
pub struct Signed {
    /// What was signed.
    pub statement: Statement,
    /// The signature, armored (`-----BEGIN SSH SIGNATURE-----`) exactly as
    /// `ssh-keygen -Y sign` writes it.
    pub signature: String,
}

/// The serialized form of [`Signed`], which carries its format version.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedFile {
    format: String,
    statement: Statement,
    signature: String,
}

impl From<Signed> for SignedFile {
    fn from(signed: Signed) -> Self {
        SignedFile {
            format: SIGNED_FORMAT.to_owned(),
            statement: signed.statement,
            signature: signed.signature,
        }
    }
}

impl TryFrom<SignedFile> for Signed {
    type Error = String;

    fn try_from(file: SignedFile) -> Result<Self, String> {
        if file.format != SIGNED_FORMAT {
            return Err(format!("format `{}` is not `{SIGNED_FORMAT}`", file.format));
        }
        Ok(Signed {
            statement: file.statement,
            signature: file.signature,
        })
    }
}

impl Signed {
    /// The JSON form, as written by `--sign-only -o FILE`.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self)
            .expect("a signed statement of strings and numbers always serializes");
        json.push('\n');
        json
    }

    /// Reads the JSON form.
    pub fn from_json(text: &str) -> Result<Signed, IdentityError> {
        serde_json::from_str(text).map_err(|e| IdentityError::SignedFile {
            reason: e.to_string(),
        })
    }

    /// The public key the signature claims (not yet proven: see [`verify`]).
    pub fn signer_key(&self) -> Result<PublicKey, IdentityError> {
        Ok(PublicKey::from(
            parse_signature(&self.signature)?.public_key().clone(),
        ))
    }

    /// The `SHA256:...` fingerprint of the key the signature claims, as `ssh-keygen -l`
    /// prints it (not yet proven: see [`verify`]).
    pub fn fingerprint(&self) -> Result<String, IdentityError> {
        Ok(fingerprint(&self.signer_key()?))
    }
}

/// Who signed a statement, proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The principal, as named by the statement and tied to the key by the allowed signers.
    pub name: String,
    /// The signing key's `SHA256:...` fingerprint.
    pub fingerprint: String,
}

/// Signs `statement` with the key at `key`: an unencrypted OpenSSH private key file, or a
/// public key file whose private half is in the ssh-agent at `$SSH_AUTH_SOCK`.
pub fn sign(statement: Statement, key: &Path) -> Result<Signed, IdentityError> {
    let agent = std::env::var_os("SSH_AUTH_SOCK")
        .filter(|socket| !socket.is_empty())
        .map(PathBuf::from);
    sign_with_agent(statement, key, agent.as_deref())
}

/// [`sign`] with the ssh-agent socket given instead of read from `$SSH_AUTH_SOCK` (`None`: no
/// agent). The agent is only used when `key` is a public key file.
pub fn sign_with_agent(
    statement: Statement,
    key: &Path,
    agent: Option<&Path>,
) -> Result<Signed, IdentityError> {
    sign_in(statement, &SigningKey::read(key, agent)?)
}

/// A key read once to sign many statements (a driver signs its journal at every rest point).
pub struct SigningKey {
    key: KeyFile,
    socket: Option<PathBuf>,
}

impl SigningKey {
    /// Reads the key at `key` (see [`sign`]); with a public key, signatures are asked of the
    /// ssh-agent at `agent`.
    pub fn read(key: &Path, agent: Option<&Path>) -> Result<SigningKey, IdentityError> {
        let file = read_key_file(key)?;
        if matches!(file, KeyFile::Public(_)) && agent.is_none() {
            return Err(IdentityError::NoAgent {
                path: key.to_path_buf(),
            });
        }
        Ok(SigningKey {
            key: file,
            socket: agent.map(Path::to_path_buf),
        })
    }

    /// [`SigningKey::read`] with the ssh-agent of `$SSH_AUTH_SOCK`.
    pub fn open(key: &Path) -> Result<SigningKey, IdentityError> {
        let agent = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|socket| !socket.is_empty())
            .map(PathBuf::from);
        Self::read(key, agent.as_deref())
    }

    /// The `SHA256:...` fingerprint of the key.
    pub fn fingerprint(&self) -> String {
        match &self.key {
            KeyFile::Private(private) => fingerprint(private.public_key()),
            KeyFile::Public(public) => fingerprint(public),
        }
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.fingerprint())
    }
}

/// Signs `statement` with `key`, in the namespace of its kind (`drctl-approval`, or
/// `drctl-journal` for a journal anchor).
pub fn sign_in(statement: Statement, key: &SigningKey) -> Result<Signed, IdentityError> {
    let namespace = namespace_of(statement.kind);
    let message = statement.to_bytes();
    let (public, signature) = match &key.key {
        KeyFile::Private(private) => {
            let signature = match private.key_data() {
                KeypairData::Rsa(rsa) => sign_rsa(rsa, namespace, &message),
                _ => private.sign(namespace, HashAlg::Sha512, &message),
            }
            .map_err(|e| IdentityError::Signing {
                fingerprint: fingerprint(private.public_key()),
                reason: chain(&e),
            })?;
            (private.public_key().clone(), signature)
        }
        KeyFile::Public(public) => {
            let socket = key
                .socket
                .as_deref()
                .expect("SigningKey::read refuses a public key without an agent");
            let signature = sign_in_agent(public, socket, namespace, &message)?;
            (public.clone(), signature)
        }
    };
    // Check what was made before handing it out: an agent is another process, and a signature
    // that does not verify would only be found out when the vote is refused.
    public
        .verify(namespace, &message, &signature)
        .map_err(|e| IdentityError::Signing {
            fingerprint: fingerprint(&public),
            reason: format!("the signature made does not verify: {}", chain(&e)),
        })?;
    let signature = signature
        .to_pem(LineEnding::LF)
        .map_err(|e| IdentityError::Signing {
            fingerprint: fingerprint(&public),
            reason: chain(&e),
        })?;
    Ok(Signed {
        statement,
        signature,
    })
}

/// Verifies that `signed` was signed, in the namespace of its kind, by a key the allowed
/// signers give to the statement's `name`, valid at the statement's own time. For offline
/// tools; drctl judges validity when it receives a statement ([`verify_at`]).
pub fn verify(signed: &Signed, signers: &AllowedSigners) -> Result<Proof, IdentityError> {
    verify_at(signed, signers, signed.statement.time()?)
}

/// Verifies that `signed` was signed, in the namespace of its kind, by a key the allowed
/// signers give to the statement's `name`, valid at `at`: the moment drctl received it, so
/// that a signer cannot backdate a statement into the window of an expired key.
pub fn verify_at(
    signed: &Signed,
    signers: &AllowedSigners,
    at: DateTime<Utc>,
) -> Result<Proof, IdentityError> {
    let namespace = namespace_of(signed.statement.kind);
    // Parsing refuses RSA signatures with SHA-1 (`ssh-rsa`), as OpenSSH does for SSH
    // signatures: only `rsa-sha2-256` and `rsa-sha2-512` decode.
    let signature = parse_signature(&signed.signature)?;
    if signature.namespace() != namespace {
        return Err(IdentityError::WrongNamespace {
            found: signature.namespace().to_owned(),
            expected: namespace,
        });
    }
    let key = PublicKey::from(signature.public_key().clone());
    let fingerprint = fingerprint(&key);
    key.verify(namespace, &signed.statement.to_bytes(), &signature)
        .map_err(|_| IdentityError::BadSignature {
            fingerprint: fingerprint.clone(),
        })?;

    let name = &signed.statement.name;
    let mut lines = signers.entries_for(name).peekable();
    if lines.peek().is_none() {
        return Err(IdentityError::UnknownSigner {
            name: name.clone(),
            fingerprint,
        });
    }
    // A key may be listed on several lines with different options: one line that allows
    // everything is enough. Otherwise report why the first line that lists the key refuses.
    let mut refusal = None;
    for entry in lines.filter(|e| !e.cert_authority && e.key.key_data() == key.key_data()) {
        let outcome = if !entry.allows_namespace(namespace) {
            Err(IdentityError::NamespaceNotAllowed {
                namespace,
                name: name.clone(),
                fingerprint: fingerprint.clone(),
                namespaces: entry.namespaces.as_deref().unwrap_or_default().join(","),
                line: entry.line,
            })
        } else if entry.valid_after.is_some_and(|after| at < after)
            || entry.valid_before.is_some_and(|before| at > before)
        {
            Err(IdentityError::KeyNotValid {
                name: name.clone(),
                fingerprint: fingerprint.clone(),
                at: super::format_time(at),
                window: window(entry),
                line: entry.line,
            })
        } else {
            Ok(())
        };
        match outcome {
            Ok(()) => {
                return Ok(Proof {
                    name: name.clone(),
                    fingerprint,
                });
            }
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    Err(refusal.unwrap_or(IdentityError::NotSignersKey {
        name: name.clone(),
        fingerprint,
    }))
}

/// The `SHA256:...` fingerprint of a key, as `ssh-keygen -l` prints it.
fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn window(entry: &super::SignerEntry) -> String {
    let time = |t| super::format_time(t);
    match (entry.valid_after, entry.valid_before) {
        (Some(after), Some(before)) => format!("from {} to {}", time(after), time(before)),
        (Some(after), None) => format!("from {}", time(after)),
        (None, Some(before)) => format!("until {}", time(before)),
        (None, None) => "always".to_owned(),
    }
}

fn parse_signature(armored: &str) -> Result<SshSig, IdentityError> {
    SshSig::from_pem(armored.trim())
        .map_err(|e| IdentityError::MalformedSignature { reason: chain(&e) })
}

enum KeyFile {
    Private(Box<PrivateKey>),
    Public(PublicKey),
}

fn read_key_file(path: &Path) -> Result<KeyFile, IdentityError> {
    let text = fs::read_to_string(path).map_err(|source| IdentityError::KeyRead {
        path: path.to_path_buf(),
        source,
    })?;
    let not_a_key = |reason: String| IdentityError::NotAKey {
        path: path.to_path_buf(),
        reason,
    };
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let private = PrivateKey::from_openssh(text.trim()).map_err(|e| not_a_key(chain(&e)))?;
        if private.is_encrypted() {
            return Err(IdentityError::EncryptedKey {
                path: path.to_path_buf(),
            });
        }
        if matches!(
            private.algorithm(),
            Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256
        ) {
            return Err(IdentityError::SecurityKey {
                path: path.to_path_buf(),
            });
        }
        return Ok(KeyFile::Private(Box::new(private)));
    }
    if text.contains("-----BEGIN ") && text.contains("PRIVATE KEY-----") {
        return Err(IdentityError::LegacyPrivateKey {
            path: path.to_path_buf(),
        });
    }
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| not_a_key("the file is empty".to_owned()))?;
    PublicKey::from_openssh(line)
        .map(KeyFile::Public)
        .map_err(|e| not_a_key(chain(&e)))
}

fn sign_in_agent(
    public: &PublicKey,
    socket: &Path,
    namespace: &str,
    message: &[u8],
) -> Result<SshSig, IdentityError> {
    let agent_error = |e: &ssh_agent_client_rs::Error| IdentityError::Agent {
        socket: socket.to_path_buf(),
        reason: chain(e),
    };
    let mut client = Client::connect(socket).map_err(|e| agent_error(&e))?;
    let held = client
        .list_all_identities()
        .map_err(|e| agent_error(&e))?
        .iter()
        .any(|identity| {
            matches!(identity, Identity::PublicKey(held) if held.key_data() == public.key_data())
        });
    if !held {
        return Err(IdentityError::KeyNotInAgent {
            socket: socket.to_path_buf(),
            fingerprint: fingerprint(public),
        });
    }
    let signing_error = |reason: String| IdentityError::Signing {
        fingerprint: fingerprint(public),
        reason,
    };
    let data = SshSig::signed_data(namespace, HashAlg::Sha512, message)
        .map_err(|e| signing_error(chain(&e)))?;
    let raw = client
        .sign(public, &data)
        .map_err(|e| signing_error(format!("ssh-agent refused: {}", chain(&e))))?;
    SshSig::new(public.key_data().clone(), namespace, HashAlg::Sha512, raw)
        .map_err(|e| signing_error(chain(&e)))
}

/// Signs with an RSA private key (PKCS#1 v1.5 with SHA-512, `rsa-sha2-512`, as `ssh-keygen`
/// does). ssh-key 0.6.7 builds the RSA private key from the wrong primes and cannot sign with
/// it (fixed upstream after that release, RustCrypto/SSH#217), so the `rsa` crate signs here
/// from the key's own components.
fn sign_rsa(
    keypair: &RsaKeypair,
    namespace: &str,
    message: &[u8],
) -> Result<SshSig, ssh_key::Error> {
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    let number = |m: &ssh_key::Mpint| rsa::BigUint::try_from(m);
    let key = rsa::RsaPrivateKey::from_components(
        number(&keypair.public.n)?,
        number(&keypair.public.e)?,
        number(&keypair.private.d)?,
        vec![number(&keypair.private.p)?, number(&keypair.private.q)?],
    )
    .map_err(|_| ssh_key::Error::Crypto)?;
    let data = SshSig::signed_data(namespace, HashAlg::Sha512, message)?;
    let raw = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha512>::new(key)
        .try_sign(&data)
        .map_err(|_| ssh_key::Error::Crypto)?;
    let signature = ssh_key::Signature::new(
        Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        raw.to_vec(),
    )?;
    SshSig::new(
        KeyData::Rsa(keypair.public.clone()),
        namespace,
        HashAlg::Sha512,
        signature,
    )
}

/// An error and its sources, `outer: inner: ...`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}
