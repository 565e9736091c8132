//! The tile formats read what a mirror fetched or a bundle holds: a tile
//! path, an entry bundle, a signature bundle. None may panic; what parses
//! must encode back to the same bytes (one spelling per tile, one
//! encoding per bundle).
#![no_main]

use audit::tiles::{
    decode_entries, decode_signatures, encode_entries, encode_signatures, parse_tile_index,
    tile_path,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some((n, w)) = parse_tile_index(s) {
            assert_eq!(tile_path("t", n, w), format!("t/{s}"));
        }
    }
    if let Ok(entries) = decode_entries(data, "fuzz") {
        assert_eq!(encode_entries(0, entries.into_iter()).unwrap(), data);
    }
    if let Ok(sigs) = decode_signatures(data, "fuzz") {
        assert_eq!(encode_signatures(sigs.iter().map(Vec::as_slice)), data);
    }
});
