//! The tokens Latchkey issues to its own clients (API credentials).
//!
//! A token is `lkt_` (recognizable by secret scanners), then 32 random base62 characters (≈ 190
//! bits), then 6 base62 characters of checksum: the first 4 bytes of SHA-256 over `lkt_` and the
//! random part, as a fixed-width base62 number. The checksum catches typos offline, before any
//! lookup. Only the SHA-256 of the whole token is stored; lookups are by that hash and the final
//! comparison is constant-time.

use crate::Secret;
use aws_lc_rs::digest;
use std::fmt;
use zeroize::Zeroizing;

/// Every issued token starts with this.
pub const TOKEN_PREFIX: &str = "lkt_";
/// Random characters after the prefix.
const RANDOM_CHARS: usize = 32;
/// Checksum characters at the end.
const CHECKSUM_CHARS: usize = 6;
/// The whole token's length in characters (all ASCII).
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + RANDOM_CHARS + CHECKSUM_CHARS;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The SHA-256 of a whole token: what is stored and looked up. `Debug` shows only a short hex
/// prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of `token` as given (no shape check).
    pub fn of(token: &str) -> TokenHash {
        let d = digest::digest(&digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TokenHash(out)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A hash read back from storage; `None` unless exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<TokenHash> {
        <[u8; 32]>::try_from(bytes).ok().map(TokenHash)
    }

    /// Compares in constant time.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.ct_eq_bytes(&other.0)
    }

    /// Compares with stored bytes in constant time (any other length is simply unequal).
    pub fn ct_eq_bytes(&self, other: &[u8]) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, other).is_ok()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A token whose shape, prefix and checksum are right (it may still be unknown).
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedToken {
    pub hash: TokenHash,
    /// `lkt_…` and the last 4 characters.
    pub hint: String,
}

impl fmt::Debug for ParsedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedToken")
            .field("hash", &self.hash)
            .field("hint", &self.hint)
            .finish()
    }
}

/// Why a text is not a Latchkey token. No variant holds or prints the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is empty")]
    Empty,
    #[error("not a Latchkey token: a token starts with \"lkt_\"")]
    WrongPrefix,
    #[error("the token has the wrong length: a Latchkey token has 42 characters")]
    WrongLength,
    #[error(
        "the token holds a character that no Latchkey token has (only letters and digits follow \"lkt_\")"
    )]
    BadCharacter,
    #[error("the token's checksum does not match: it was mistyped or truncated")]
    BadChecksum,
}

/// A new token (show it once) and its hash (store that).
///
/// Panics only if the operating system's random number generator fails.
pub fn generate_token() -> (Secret, TokenHash) {
    let mut token = Zeroizing::new(String::with_capacity(TOKEN_LEN));
    token.push_str(TOKEN_PREFIX);
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut pool = Zeroizing::new([0u8; 64]);
    while token.len() < TOKEN_PREFIX.len() + RANDOM_CHARS {
        aws_lc_rs::rand::SecureRandom::fill(&rng, pool.as_mut())
            .expect("the system random number generator failed");
        for &b in pool.iter() {
            // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
            if b < 248 && token.len() < TOKEN_PREFIX.len() + RANDOM_CHARS {
                token.push(BASE62[usize::from(b % 62)] as char);
            }
        }
    }
    let checksum = checksum(&token);
    token.push_str(std::str::from_utf8(&checksum).expect("base62 is ASCII"));
    let hash = TokenHash::of(&token);
    (Secret::from_str_ref(&token), hash)
}

/// Checks a presented token's shape, prefix and checksum, without any lookup; returns its hash.
pub fn parse_token(text: &str) -> Result<ParsedToken, TokenError> {
    let hash = token_hash(text)?;
    check_checksum(text)?;
    Ok(ParsedToken {
        hash,
        hint: token_hint(text),
    })
}

/// Checks a presented token's shape and prefix (not its checksum) and returns its hash: enough to
/// look it up among tokens already checked once. A token whose hash is an issued token's has that
/// token's checksum; any other must pass [`check_checksum`] before it is looked up.
pub fn token_hash(text: &str) -> Result<TokenHash, TokenError> {
    if text.is_empty() {
        return Err(TokenError::Empty);
    }
    let Some(body) = text.strip_prefix(TOKEN_PREFIX) else {
        return Err(TokenError::WrongPrefix);
    };
    if text.len() != TOKEN_LEN {
        return Err(TokenError::WrongLength);
    }
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(TokenError::BadCharacter);
    }
    Ok(TokenHash::of(text))
}

/// Checks the checksum of a token of the right shape ([`token_hash`]).
pub fn check_checksum(text: &str) -> Result<(), TokenError> {
    if text.len() != TOKEN_LEN || !text.is_ascii() {
        return Err(TokenError::WrongLength);
    }
    let (head, given) = text.split_at(TOKEN_LEN - CHECKSUM_CHARS);
    let expected = checksum(head);
    if aws_lc_rs::constant_time::verify_slices_are_equal(&expected, given.as_bytes()).is_err() {
        return Err(TokenError::BadChecksum);
    }
    Ok(())
}

/// `lkt_…` and the last 4 characters of the token (`lkt_…` alone for a text shorter than 12).
pub fn token_hint(token: &str) -> String {
    let count = token.chars().count();
    let mut hint = format!("{TOKEN_PREFIX}…");
    if count >= 12 {
        hint.extend(token.chars().skip(count - 4));
    }
    hint
}

/// The first 4 bytes of SHA-256 over `head`, as 6 base62 digits (most significant first).
fn checksum(head: &str) -> [u8; CHECKSUM_CHARS] {
    let d = digest::digest(&digest::SHA256, head.as_bytes());
    let bytes = d.as_ref();
    let mut n = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shape_prefix_and_charset() {
        for _ in 0..50 {
            let (token, hash) = generate_token();
            let t = token.expose();
            assert_eq!(t.len(), TOKEN_LEN);
            assert_eq!(t.len(), 42);
            assert!(t.starts_with("lkt_"));
            assert!(t[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
            let parsed = parse_token(t).unwrap();
            assert!(parsed.hash.ct_eq(&hash));
            assert_eq!(parsed.hash, TokenHash::of(t));
            assert_eq!(parsed.hint, format!("lkt_…{}", &t[38..]));
        }
    }

    #[test]
    fn every_one_character_change_fails_the_checksum() {
        for _ in 0..5 {
            let (token, _) = generate_token();
            let t = token.expose();
            for i in 4..t.len() {
                for &c in BASE62 {
                    if c == t.as_bytes()[i] {
                        continue;
                    }
                    let mut changed = t.as_bytes().to_vec();
                    changed[i] = c;
                    let changed = String::from_utf8(changed).unwrap();
                    assert_eq!(
                        parse_token(&changed),
                        Err(TokenError::BadChecksum),
                        "position {i}"
                    );
                }
            }
            // Swapping two neighbours (a common typo) fails too.
            for i in 4..t.len() - 1 {
                let mut swapped = t.as_bytes().to_vec();
                if swapped[i] == swapped[i + 1] {
                    continue;
                }
                swapped.swap(i, i + 1);
                let swapped = String::from_utf8(swapped).unwrap();
                assert!(parse_token(&swapped).is_err());
            }
        }
    }

    #[test]
    fn malformed_tokens() {
        let (token, _) = generate_token();
        let t = token.expose();
        assert_eq!(parse_token(""), Err(TokenError::Empty));
        assert_eq!(
            parse_token(&t.replacen("lkt_", "lkx_", 1)),
            Err(TokenError::WrongPrefix)
        );
        assert_eq!(
            parse_token(&t.replacen("lkt_", "LKT_", 1)),
            Err(TokenError::WrongPrefix)
        );
        assert_eq!(parse_token(&t[..41]), Err(TokenError::WrongLength));
        assert_eq!(parse_token(&format!("{t}a")), Err(TokenError::WrongLength));
        assert_eq!(parse_token(&format!(" {t}")), Err(TokenError::WrongPrefix));
        let mut bad = t.to_owned();
        bad.replace_range(10..11, "-");
        assert_eq!(parse_token(&bad), Err(TokenError::BadCharacter));
        // Multi-byte characters of the same byte length are refused, never sliced.
        let mut accented = t[..40].to_owned();
        accented.push('é');
        assert_eq!(parse_token(&accented), Err(TokenError::BadCharacter));
    }

    #[test]
    fn the_hash_needs_the_shape_and_the_checksum_is_checked_apart() {
        let (token, hash) = generate_token();
        let t = token.expose();
        assert_eq!(token_hash(t), Ok(hash));
        assert_eq!(check_checksum(t), Ok(()));
        let mut typo = t.to_owned();
        let last = if t.ends_with('x') { "y" } else { "x" };
        typo.replace_range(TOKEN_LEN - 1.., last);
        assert!(token_hash(&typo).is_ok(), "the shape is right");
        assert_eq!(check_checksum(&typo), Err(TokenError::BadChecksum));
        assert_eq!(token_hash(&t[..41]), Err(TokenError::WrongLength));
        assert_eq!(check_checksum(&t[..41]), Err(TokenError::WrongLength));
    }

    #[test]
    fn tokens_differ_and_hashes_are_stable() {
        let (a, ha) = generate_token();
        let (b, hb) = generate_token();
        assert_ne!(a.expose(), b.expose());
        assert_ne!(ha, hb);
        assert!(!ha.ct_eq(&hb));
        assert_eq!(TokenHash::of(a.expose()), ha);
        assert_eq!(TokenHash::of(a.expose()), TokenHash::of(a.expose()));
        assert_eq!(TokenHash::from_bytes(ha.as_bytes()), Some(ha));
        assert_eq!(TokenHash::from_bytes(&[0; 31]), None);
        assert!(ha.ct_eq_bytes(ha.as_bytes()));
        assert!(!ha.ct_eq_bytes(&ha.as_bytes()[..31]));
    }

    #[test]
    fn debug_and_errors_leak_no_token() {
        let (token, hash) = generate_token();
        let t = token.expose();
        let parsed = parse_token(t).unwrap();
        let hex: String = hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        for text in [
            format!("{hash:?}"),
            format!("{parsed:?}"),
            format!("{token:?}"),
            format!("{token}"),
        ] {
            assert!(!text.contains(&t[4..38]), "{text}");
            assert!(!text.contains(&hex), "{text}");
        }
        let mut typo = t.to_owned();
        typo.replace_range(20..21, if &t[20..21] == "a" { "b" } else { "a" });
        for input in [typo.as_str(), &t[..30], &t[4..]] {
            let e = parse_token(input).unwrap_err();
            assert!(!e.to_string().contains(&input[8..20]));
            assert!(!format!("{e:?}").contains(&input[8..20]));
        }
    }

    #[test]
    fn hints() {
        assert_eq!(
            token_hint("lkt_abcdefghijklmnopqrstuvwxyz0123456789AB"),
            "lkt_…89AB"
        );
        assert_eq!(token_hint("short"), "lkt_…");
        assert_eq!(token_hint("ééééééééééééwxyz"), "lkt_…wxyz");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse_token(&s);
            let _ = token_hint(&s);
        }

        #[test]
        fn parse_never_panics_near_the_shape(s in "lkt_[0-9A-Za-z\u{e9}\u{1F600}-]{30,45}") {
            let _ = parse_token(&s);
        }

        #[test]
        fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_token(&s);
        }
    }
}
