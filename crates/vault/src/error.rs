use crate::key::KeyId;

/// Everything that can go wrong in the vault.
///
/// No variant holds or prints key or secret material: key ids are not secret, and every other
/// detail is a fixed `&'static str` or a line number.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The envelope bytes do not have the documented shape.
    #[error(
        "the sealed envelope is malformed ({0}); the stored value is damaged or is not a Latchkey envelope"
    )]
    MalformedEnvelope(&'static str),

    /// The envelope names a master key that the ring does not hold.
    #[error(
        "this envelope was sealed with master key {0}, which is not in the key ring; add that key to the key ring"
    )]
    UnknownKey(KeyId),

    /// Authentication failed: the envelope was altered or is bound to another row.
    #[error(
        "the envelope did not open: it was altered, or it belongs to another credential, workspace or revision"
    )]
    OpenFailed,

    /// A master key could not be read.
    #[error(
        "the master key is invalid: {reason}; a master key is 32 random bytes in standard base64 (44 characters)"
    )]
    InvalidMasterKey {
        /// What is wrong, e.g. "not valid base64" or "must be 32 bytes".
        reason: &'static str,
    },

    /// A text is not a master key id (`mk_` followed by 16 lowercase hex digits).
    #[error("not a master key id: a key id is \"mk_\" followed by 16 lowercase hexadecimal digits")]
    InvalidKeyId,

    /// A line of the key file could not be used.
    #[error(
        "key file, line {line}: {reason}; each line holds one master key (32 bytes in standard base64), a comment starting with '#', or nothing"
    )]
    MalformedKeyFile {
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line (never the line itself).
        reason: &'static str,
    },

    /// The key file holds no key at all.
    #[error(
        "the key file holds no master key; add one base64 master key per line (the first is the primary)"
    )]
    EmptyKeyFile,

    /// The same key was given twice.
    #[error("master key {0} appears more than once in the key ring; list each key once")]
    DuplicateKey(KeyId),

    /// The primary key cannot be removed from the ring.
    #[error(
        "master key {0} is the primary key and cannot be removed; rotate to a new primary key first"
    )]
    RemovePrimary(KeyId),

    /// The key ring does not hold the key this database was sealed with.
    #[error(
        "wrong master key: the stored data was sealed with master key {expected}, but the key ring holds {}; supply the key {expected}",
        join_ids(.have)
    )]
    WrongMasterKey {
        /// The key id recorded in the key-check canary.
        expected: KeyId,
        /// The ids in the ring that was tried.
        have: Vec<KeyId>,
    },

    /// Decrypted secret fields could not be decoded.
    #[error("the decrypted secret fields are malformed")]
    MalformedFields,

    /// The random number generator or the cipher failed.
    #[error("a cryptographic operation failed (random number generator or cipher)")]
    Crypto,
}

fn join_ids(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "no key".to_owned();
    }
    ids.iter().map(KeyId::as_str).collect::<Vec<_>>().join(", ")
}
