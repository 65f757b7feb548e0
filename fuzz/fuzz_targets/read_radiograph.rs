//! Any bytes given to `read_radiograph_bytes` must give an image or an error, never
//! a panic, a hang or an allocation beyond the size guard.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = boneage_core::read_radiograph_bytes(data, "fuzz-input") {
        let px = r.pixels.as_slice();
        assert_eq!(px.len(), r.pixels.width() * r.pixels.height());
        assert!(px.iter().all(|v| v.is_finite()), "non-finite pixel");
    }
});
