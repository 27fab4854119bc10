//! The few DER building blocks our hand-made encodings need (AIA, CRLs): definite lengths and
//! tag-length-value triples. Everything built with them is checked by openssl, pkilint and Python
//! cryptography in the tests.

/// Append DER length octets for `n`.
pub fn push_len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
        return;
    }
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Append one TLV.
pub fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// One TLV as a new vector.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_tlv(&mut out, tag, content);
    out
}

/// A non-negative INTEGER from an unsigned value (minimal octets, leading zero when the top bit
/// is set).
pub fn uint(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut content = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[skip..]);
    tlv(0x02, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &vec![0; 70_000]);
        assert_eq!(&longer[..5], &[0x04, 0x83, 0x01, 0x11, 0x70]);
        assert_eq!(uint(0), vec![0x02, 1, 0]);
        assert_eq!(uint(127), vec![0x02, 1, 127]);
        assert_eq!(uint(128), vec![0x02, 2, 0, 128]);
        assert_eq!(uint(0x0102), vec![0x02, 2, 1, 2]);
        assert_eq!(uint(u64::MAX)[..3], [0x02, 9, 0]);
    }
}
