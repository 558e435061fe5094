//! The bytes each stream sends: a deterministic sequence per stream, so the echo can be
//! checked byte for byte without keeping a copy of what was sent.

/// The `len` bytes of stream `seed`'s sequence that start at `offset`.
pub fn bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| byte(seed, offset + i)).collect()
}

/// Byte `at` of stream `seed`'s sequence (a SplitMix64 step of both, truncated).
fn byte(seed: u64, at: u64) -> u8 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(at / 8);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z.to_le_bytes()[(at % 8) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_split_gives_the_same_sequence() {
        let whole = bytes(7, 0, 100);
        let mut parts = bytes(7, 0, 33);
        parts.extend(bytes(7, 33, 67));
        assert_eq!(whole, parts);
        assert_ne!(whole, bytes(8, 0, 100));
    }
}
