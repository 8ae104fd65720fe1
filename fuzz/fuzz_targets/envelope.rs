//! Opening a stored envelope of any content fails with an error, never panics, and never opens:
//! only what the key ring sealed, for the same binding, opens (a flipped byte of a real envelope
//! included).
#![no_main]

use latchkey_vault::{Binding, KeyRing, MasterKey};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static RING: LazyLock<(KeyRing, Vec<u8>)> = LazyLock::new(|| {
    let ring = KeyRing::new(MasterKey::generate());
    let sealed = ring
        .seal(&Binding::new("w1", "c1", 1), b"{\"api_key\":\"fuzz\"}")
        .expect("sealed");
    (ring, sealed)
});

fuzz_target!(|data: (&[u8], u16, u8)| {
    let (ring, sealed) = &*RING;
    let binding = Binding::new("w1", "c1", 1);
    assert!(ring.open(&binding, data.0).is_err() || data.0 == sealed.as_slice());
    // The real envelope with one byte changed does not open.
    let mut flipped = sealed.clone();
    let at = usize::from(data.1) % flipped.len();
    flipped[at] ^= data.2.max(1);
    assert!(ring.open(&binding, &flipped).is_err());
});
