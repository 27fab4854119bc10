//! The few DER building blocks our hand-made encodings need (AIA, CRLs, attribute certificates):
//! definite lengths and tag-length-value triples, and a strict reader for the structures we parse
//! by hand (attribute certificates). Everything built with them is checked by openssl, pkilint,
//! Python cryptography and Bouncy Castle in the tests.

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

/// What a [`Reader`] refuses: anything that is not strict DER of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError(pub String);

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn der_err<T>(msg: impl Into<String>) -> std::result::Result<T, DerError> {
    Err(DerError(msg.into()))
}

/// A strict DER reader over one buffer: single-octet tags, definite lengths in their shortest
/// form, nothing left over where a structure ends. It never allocates and never panics on any
/// input.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    data: &'a [u8],
}

/// One TLV as read: its tag, its content octets, and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// Tag, length and content.
    pub whole: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next tag, without reading it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// The next TLV, whatever its tag.
    pub fn any(&mut self) -> std::result::Result<Tlv<'a>, DerError> {
        let data = self.data;
        let (&tag, rest) = match data.split_first() {
            Some(x) => x,
            None => return der_err("truncated: a value was expected"),
        };
        if tag & 0x1f == 0x1f {
            return der_err("multi-octet tags are not used here");
        }
        let (&first, rest) = match rest.split_first() {
            Some(x) => x,
            None => return der_err("truncated length"),
        };
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 {
                return der_err("indefinite length is not DER");
            }
            if n > 4 || rest.len() < n {
                return der_err("bad length");
            }
            let (octets, rest) = rest.split_at(n);
            if octets[0] == 0 {
                return der_err("length not in its shortest form");
            }
            let len = octets
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            if len < 0x80 {
                return der_err("length not in its shortest form");
            }
            (len, rest)
        };
        if rest.len() < len {
            return der_err("truncated value");
        }
        let header = data.len() - rest.len();
        let (content, next) = rest.split_at(len);
        self.data = next;
        Ok(Tlv {
            tag,
            content,
            whole: &data[..header + len],
        })
    }

    /// The content of the next TLV, which must have tag `tag`.
    pub fn read(&mut self, tag: u8, what: &str) -> std::result::Result<&'a [u8], DerError> {
        match self.peek_tag() {
            Some(t) if t == tag => Ok(self.any()?.content),
            Some(t) => der_err(format!("{what}: expected tag {tag:#04x}, found {t:#04x}")),
            None => der_err(format!("{what}: missing")),
        }
    }

    /// The content of the next TLV if its tag is `tag`.
    pub fn optional(&mut self, tag: u8) -> std::result::Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(tag) {
            Ok(Some(self.any()?.content))
        } else {
            Ok(None)
        }
    }

    /// Refuse anything left over.
    pub fn finish(&self, what: &str) -> std::result::Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            der_err(format!("{what}: unexpected data after the end"))
        }
    }
}

/// The content octets of a DER INTEGER, checked to be minimal and positive (a serial number).
pub fn positive_integer(content: &[u8], what: &str) -> std::result::Result<(), DerError> {
    match content {
        [] => der_err(format!("{what}: empty INTEGER")),
        [0] => der_err(format!("{what}: must be positive")),
        [0, next, ..] if next & 0x80 == 0 => der_err(format!("{what}: INTEGER not minimal")),
        [0xff, next, ..] if next & 0x80 != 0 => der_err(format!("{what}: INTEGER not minimal")),
        [first, ..] if first & 0x80 != 0 => der_err(format!("{what}: must be positive")),
        _ => Ok(()),
    }
}

/// DER `SET OF`: the encodings sorted in ascending order (X.690 11.6).
pub fn set_of(mut items: Vec<Vec<u8>>) -> Vec<u8> {
    items.sort();
    tlv(0x31, &items.concat())
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

    #[test]
    fn the_reader_is_strict() {
        let long = tlv(0x04, &[7; 200]);
        let mut r = Reader::new(&long);
        let t = r.any().unwrap();
        assert_eq!((t.tag, t.content.len(), t.whole.len()), (0x04, 200, 203));
        assert!(r.is_empty());
        // Indefinite, non-minimal and truncated lengths, and multi-octet tags.
        for bad in [
            &[0x30, 0x80, 0, 0][..],
            &[0x04, 0x81, 0x05, 1, 2, 3, 4, 5],
            &[0x04, 0x82, 0x00, 0x90],
            &[0x04, 0x03, 1],
            &[0x1f, 0x01, 0x00],
            &[0x04],
        ] {
            assert!(Reader::new(bad).any().is_err(), "{bad:02x?}");
        }
        let mut two = Reader::new(&[0x02, 0x01, 0x05, 0x05, 0x00]);
        assert_eq!(two.read(0x02, "n").unwrap(), &[5]);
        assert!(two.finish("x").is_err());
        assert!(two.read(0x02, "n").is_err());
        assert!(positive_integer(&[0x00, 0x80], "s").is_ok());
        assert!(positive_integer(&[0x00, 0x10], "s").is_err());
        assert!(positive_integer(&[0x80], "s").is_err());
        assert!(positive_integer(&[0x00], "s").is_err());
        assert_eq!(
            set_of(vec![vec![0x0c, 1, b'b'], vec![0x0c, 1, b'a']]),
            vec![0x31, 6, 0x0c, 1, b'a', 0x0c, 1, b'b']
        );
    }
}
