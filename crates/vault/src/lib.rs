#![doc = include_str!("../README.md")]

mod envelope;
mod error;
mod fields;
mod key;
mod ring;
mod secret;
mod token;

pub use envelope::envelope_key_id;
pub use error::VaultError;
pub use fields::{SecretFields, decode_fields, encode_fields};
pub use key::{KeyId, MasterKey};
pub use ring::{Binding, KeyRing};
pub use secret::{Secret, SecretBytes};
pub use token::{
    ParsedToken, TOKEN_LEN, TOKEN_PREFIX, TokenError, TokenHash, check_checksum, generate_token,
    parse_token, token_hash, token_hint,
};
