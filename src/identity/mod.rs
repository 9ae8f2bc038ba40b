//! Who signed what, proven by SSH signatures (SPEC 5.9).
//!
//! A person signs a [`Statement`] (a decision on an approval, or the start of a run) with an
//! SSH key, in the namespace [`NAMESPACE`], exactly as `ssh-keygen -Y sign` does; anyone can
//! [`verify`] the resulting [`Signed`] statement against an OpenSSH allowed-signers file
//! ([`AllowedSigners`]) and learn which principal signed it ([`Proof`]). Signatures made here
//! verify with `ssh-keygen -Y verify` and the other way round.
//!
//! This module must not do I/O beyond reading key files and talking to ssh-agent, and knows
//! nothing about the engine: whether a statement is for the right run, step, round and digest,
//! and whether it is stale, is for the engine to check.

mod signed;
mod signers;
mod statement;

use std::path::PathBuf;

pub use signed::{
    Proof, SIGNED_FORMAT, Signed, SigningKey, sign, sign_in, sign_with_agent, verify, verify_at,
};
pub use signers::{AllowedSigners, SignerEntry, SignersError};
pub use statement::{Head, Statement, StatementKind, format_time};

/// The SSH signature namespace of drctl's statements (`ssh-keygen -Y sign -n drctl-approval`).
pub const NAMESPACE: &str = "drctl-approval";

/// The SSH signature namespace of a driver's signature on a run's journal (SPEC §5.10): an
/// allowed-signers line names it (`namespaces="drctl-journal"`) for the keys that drive runs.
pub const JOURNAL_NAMESPACE: &str = "drctl-journal";

/// The namespace a statement of `kind` is signed in.
pub fn namespace_of(kind: StatementKind) -> &'static str {
    match kind {
        StatementKind::JournalAnchor => JOURNAL_NAMESPACE,
        _ => NAMESPACE,
    }
}

/// Why a statement could not be signed, or a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The key file could not be read.
    #[error("cannot read the key file `{}`: {source}", path.display())]
    KeyRead {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file holds no key drctl can use.
    #[error(
        "`{}` holds neither an OpenSSH private key nor an SSH public key: {reason}",
        path.display()
    )]
    NotAKey {
        /// The key file.
        path: PathBuf,
        /// What failed to parse.
        reason: String,
    },
    /// A private key in a PEM format older than OpenSSH's own.
    #[error(
        "`{}` is a private key in an older PEM format; convert it with `ssh-keygen -p -f {}`, \
         or load it into ssh-agent and pass its public key (`.pub`)",
        path.display(), path.display()
    )]
    LegacyPrivateKey {
        /// The key file.
        path: PathBuf,
    },
    /// A passphrase-protected private key: drctl never asks for passphrases.
    #[error(
        "the private key `{}` is encrypted with a passphrase; load it into ssh-agent \
         (`ssh-add {}`) and pass its public key (`{}.pub`) instead",
        path.display(), path.display(), path.display()
    )]
    EncryptedKey {
        /// The key file.
        path: PathBuf,
    },
    /// A FIDO (security key) private key handle, which only ssh-agent can use.
    #[error(
        "`{}` is a FIDO security key; load it into ssh-agent (`ssh-add {}`) and pass its \
         public key (`{}.pub`) instead",
        path.display(), path.display(), path.display()
    )]
    SecurityKey {
        /// The key file.
        path: PathBuf,
    },
    /// A public key was given but no ssh-agent is reachable.
    #[error(
        "`{}` is a public key, so its private half must be in ssh-agent, but SSH_AUTH_SOCK is \
         not set; start ssh-agent and `ssh-add` the key, or pass the private key file",
        path.display()
    )]
    NoAgent {
        /// The public key file.
        path: PathBuf,
    },
    /// Talking to ssh-agent failed.
    #[error("ssh-agent at `{}` failed: {reason}", socket.display())]
    Agent {
        /// The agent's socket.
        socket: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// ssh-agent does not hold the private half of the given public key.
    #[error(
        "ssh-agent at `{}` does not hold the key {fingerprint}; add it with `ssh-add`",
        socket.display()
    )]
    KeyNotInAgent {
        /// The agent's socket.
        socket: PathBuf,
        /// The key that was asked for.
        fingerprint: String,
    },
    /// Signing failed.
    #[error("signing with {fingerprint} failed: {reason}")]
    Signing {
        /// The signing key.
        fingerprint: String,
        /// What went wrong.
        reason: String,
    },
    /// The signature is not an armored SSH signature.
    #[error("the signature is not an SSH signature (-----BEGIN SSH SIGNATURE-----): {reason}")]
    MalformedSignature {
        /// What failed to parse.
        reason: String,
    },
    /// The signature was made for another purpose.
    #[error("signed for namespace `{found}`, not `{expected}`")]
    WrongNamespace {
        /// The namespace the signature was made in.
        found: String,
        /// The namespace it had to be made in.
        expected: &'static str,
    },
    /// The signature does not match the statement: it was changed after signing.
    #[error("the signature does not verify: the statement is not what {fingerprint} signed")]
    BadSignature {
        /// The key the signature claims.
        fingerprint: String,
    },
    /// The statement's name has no key in the allowed signers.
    #[error("`{name}` has no key in the allowed signers (signed by {fingerprint})")]
    UnknownSigner {
        /// The name the statement claims.
        name: String,
        /// The signing key.
        fingerprint: String,
    },
    /// The signing key is not one of the name's keys.
    #[error("signed by a key that is not {name}'s ({fingerprint})")]
    NotSignersKey {
        /// The name the statement claims.
        name: String,
        /// The signing key.
        fingerprint: String,
    },
    /// The key is the name's, but its `namespaces=` option does not allow drctl's namespace.
    #[error(
        "{name}'s key {fingerprint} may only sign in namespaces `{namespaces}` (allowed signers \
         line {line}), not `{namespace}`"
    )]
    NamespaceNotAllowed {
        /// The namespace asked for.
        namespace: &'static str,
        /// The name the statement claims.
        name: String,
        /// The signing key.
        fingerprint: String,
        /// The namespaces the line allows.
        namespaces: String,
        /// The allowed-signers line.
        line: usize,
    },
    /// The key is the name's, but not at the moment the statement was received.
    #[error(
        "{name}'s key {fingerprint} is not valid at {at}: it is valid {window} (allowed signers \
         line {line})"
    )]
    KeyNotValid {
        /// The name the statement claims.
        name: String,
        /// The signing key.
        fingerprint: String,
        /// The moment judged (when drctl received the statement).
        at: String,
        /// The validity window, e.g. `from 2026-01-01T00:00:00Z`.
        window: String,
        /// The allowed-signers line.
        line: usize,
    },
    /// The statement's time is not RFC 3339.
    #[error("the statement's time `{at}` is not an RFC 3339 time")]
    BadTime {
        /// The time as written.
        at: String,
    },
    /// A signed-statement file that is not one.
    #[error("not a drctl signed statement ({SIGNED_FORMAT}): {reason}")]
    SignedFile {
        /// What is wrong.
        reason: String,
    },
}
