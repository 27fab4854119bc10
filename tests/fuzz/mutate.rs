//! A DER-aware mutator: valid encodings are read into a tree of TLVs (constructed values, and
//! OCTET/BIT STRINGs that hold DER, are opened), the tree is changed the way a hostile or broken
//! encoder would change it, and written back with every length recomputed, so the parser gets past
//! the outer layers and meets the change deep inside. Then, sometimes, the bytes themselves are
//! damaged (lengths made wrong or non-minimal, truncation, bit flips), which no tree can express.
//!
//! Every mutation is driven by one u64 from proptest, so a failing case shrinks to few, small
//! mutations and prints as a short list of numbers.

/// One TLV.
#[derive(Clone, Debug)]
pub enum Node {
    /// A primitive value (or one whose content is not DER).
    Prim { tag: u8, content: Vec<u8> },
    /// A constructed value (SEQUENCE, SET, [n] constructed).
    Cons { tag: u8, children: Vec<Node> },
    /// An OCTET STRING or BIT STRING (`prefix` = the unused-bits octet) holding DER.
    Wrap {
        tag: u8,
        prefix: Vec<u8>,
        children: Vec<Node>,
    },
}

/// Read one TLV with a definite, short or long length. Multi-byte tags are not used in X.509.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | b as usize;
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn read_all(mut input: &[u8], depth: usize) -> Option<Vec<Node>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tag, content, rest) = read_tlv(input)?;
        out.push(read_node(tag, content, depth));
        input = rest;
    }
    Some(out)
}

fn read_node(tag: u8, content: &[u8], depth: usize) -> Node {
    if depth < 24 {
        if tag & 0x20 != 0 {
            if let Some(children) = read_all(content, depth + 1) {
                return Node::Cons { tag, children };
            }
        }
        // OCTET STRING, or BIT STRING with no unused bits, whose content is itself DER.
        let (prefix, inner) = match tag {
            0x04 => (&content[..0], content),
            0x03 if content.first() == Some(&0) => (&content[..1], &content[1..]),
            _ => (&content[..0], &content[..0]),
        };
        if !inner.is_empty() && matches!(inner[0], 0x30 | 0x31 | 0x02 | 0x04 | 0x06 | 0x0a) {
            if let Some(children) = read_all(inner, depth + 1) {
                return Node::Wrap {
                    tag,
                    prefix: prefix.to_vec(),
                    children,
                };
            }
        }
    }
    Node::Prim {
        tag,
        content: content.to_vec(),
    }
}

/// Parse DER into a forest (one root for a well-formed input).
pub fn parse(der: &[u8]) -> Vec<Node> {
    read_all(der, 0).unwrap_or_else(|| {
        vec![Node::Prim {
            tag: 0x04,
            content: der.to_vec(),
        }]
    })
}

fn push_len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn write_node(node: &Node, out: &mut Vec<u8>) {
    let (tag, content) = match node {
        Node::Prim { tag, content } => (*tag, content.clone()),
        Node::Cons { tag, children } => (*tag, write(children)),
        Node::Wrap {
            tag,
            prefix,
            children,
        } => {
            let mut c = prefix.clone();
            c.extend_from_slice(&write(children));
            (*tag, c)
        }
    };
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(&content);
}

/// Serialise a forest as DER (every length recomputed, minimal).
pub fn write(nodes: &[Node]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in nodes {
        write_node(n, &mut out);
    }
    out
}

/// A small deterministic generator seeded by one mutation's u64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn count(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| {
            1 + match n {
                Node::Prim { .. } => 0,
                Node::Cons { children, .. } | Node::Wrap { children, .. } => count(children),
            }
        })
        .sum()
}

/// The path (child indices from the root list) of the `k`-th node in pre-order.
fn locate(nodes: &[Node], k: &mut usize, path: &mut Vec<usize>) -> bool {
    for (i, n) in nodes.iter().enumerate() {
        path.push(i);
        if *k == 0 {
            return true;
        }
        *k -= 1;
        if let Node::Cons { children, .. } | Node::Wrap { children, .. } = n {
            if locate(children, k, path) {
                return true;
            }
        }
        path.pop();
    }
    false
}

/// The `k`-th node in pre-order.
fn nth(nodes: &[Node], k: usize) -> Option<&Node> {
    let (mut k, mut path) = (k, Vec::new());
    if !locate(nodes, &mut k, &mut path) {
        return None;
    }
    let (last, parents) = path.split_last()?;
    let mut list = nodes;
    for &i in parents {
        match &list[i] {
            Node::Cons { children, .. } | Node::Wrap { children, .. } => list = children,
            Node::Prim { .. } => return None,
        }
    }
    list.get(*last)
}

/// Apply `f` to the list holding the `k`-th node and that node's index.
fn with_node(nodes: &mut Vec<Node>, k: usize, f: impl FnOnce(&mut Vec<Node>, usize)) {
    let (mut k, mut path) = (k, Vec::new());
    if !locate(nodes, &mut k, &mut path) {
        return;
    }
    let Some((&last, parents)) = path.split_last() else {
        return;
    };
    let mut list = nodes;
    for &i in parents {
        match &mut list[i] {
            Node::Cons { children, .. } | Node::Wrap { children, .. } => list = children,
            Node::Prim { .. } => return,
        }
    }
    f(list, last);
}

/// Interesting INTEGER contents.
const INTEGERS: &[&[u8]] = &[
    &[],
    &[0],
    &[0x80],
    &[0xff],
    &[0, 0],
    &[0, 0x7f],
    &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x80, 0, 0, 0, 0, 0, 0, 0, 0],
    &[1; 40],
];

/// Interesting tags (universal primitive and constructed, context-specific).
const TAGS: &[u8] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x1e, 0x30, 0x31,
    0x80, 0x81, 0x82, 0x86, 0xa0, 0xa1, 0xa2, 0xa3, 0xff,
];

/// One tree mutation, chosen by `seed`, possibly splicing from `donors`.
fn mutate_tree(nodes: &mut Vec<Node>, seed: u64, donors: &[Vec<Node>]) {
    let mut r = Rng::new(seed);
    let total = count(nodes);
    if total == 0 {
        return;
    }
    let k = r.below(total);
    let kind = r.below(11);
    let donor = if donors.is_empty() {
        None
    } else {
        let d = &donors[r.below(donors.len())];
        nth(d, r.below(count(d).max(1))).cloned()
    };
    let extra = r.next();
    with_node(nodes, k, |list, i| match kind {
        // Change the tag.
        0 => {
            let t = TAGS[(extra % TAGS.len() as u64) as usize];
            match &mut list[i] {
                Node::Prim { tag, .. } | Node::Cons { tag, .. } | Node::Wrap { tag, .. } => {
                    *tag = if extra & 0x100 != 0 {
                        *tag ^ (1 << ((extra >> 9) % 8))
                    } else {
                        t
                    }
                }
            }
        }
        // Drop the TLV.
        1 => {
            list.remove(i);
        }
        // Duplicate it.
        2 => {
            let n = list[i].clone();
            let times = 1 + (extra % 3) as usize;
            for _ in 0..times {
                list.insert(i, n.clone());
            }
        }
        // Swap it with a sibling.
        3 => {
            let j = (extra % list.len() as u64) as usize;
            list.swap(i, j);
        }
        // Replace it with a node from another valid input (splice).
        4 | 5 => {
            if let Some(d) = donor {
                if extra & 1 == 0 {
                    list[i] = d;
                } else {
                    list.insert(i, d);
                }
            }
        }
        // Interesting integer content / empty content / huge content.
        6 => {
            let tag = match &list[i] {
                Node::Prim { tag, .. } | Node::Cons { tag, .. } | Node::Wrap { tag, .. } => *tag,
            };
            let content = match extra % 4 {
                0 => INTEGERS[((extra >> 8) % INTEGERS.len() as u64) as usize].to_vec(),
                1 => Vec::new(),
                2 => vec![(extra >> 16) as u8; ((extra >> 24) % 300) as usize],
                _ => (0..((extra >> 8) % 64)).map(|b| (b * 37) as u8).collect(),
            };
            list[i] = Node::Prim { tag, content };
        }
        // Flip bits in a primitive's content (OIDs, times, key bits, strings).
        7 | 8 => {
            if let Node::Prim { content, .. } = &mut list[i] {
                if !content.is_empty() {
                    let p = (extra % content.len() as u64) as usize;
                    content[p] ^= 1 << ((extra >> 32) % 8);
                    if extra & 0x8000 != 0 {
                        content[p] = (extra >> 40) as u8;
                    }
                }
            }
        }
        // Truncate or extend a primitive's content.
        9 => {
            if let Node::Prim { content, .. } = &mut list[i] {
                if extra & 1 == 0 {
                    let keep = (extra >> 1) as usize % (content.len() + 1);
                    content.truncate(keep);
                } else {
                    content.push((extra >> 8) as u8);
                }
            }
        }
        // Open or close a wrapper: make the inner DER opaque or put a node in a SEQUENCE.
        _ => {
            let n = list[i].clone();
            list[i] = if extra & 1 == 0 {
                Node::Cons {
                    tag: 0x30,
                    children: vec![n],
                }
            } else {
                Node::Prim {
                    tag: 0x04,
                    content: write(&[n]),
                }
            };
        }
    });
}

/// Damage to the bytes that a tree cannot express. Lengths are found by walking the TLVs again.
fn mutate_bytes(der: &mut Vec<u8>, seed: u64) {
    let mut r = Rng::new(seed);
    if der.is_empty() {
        der.push(r.next() as u8);
        return;
    }
    // Header offsets (tag positions) of every definite TLV we can walk.
    let mut heads = Vec::new();
    fn walk(buf: &[u8], base: usize, heads: &mut Vec<usize>, depth: usize) {
        let mut off = 0;
        while off < buf.len() && depth < 24 {
            let Some((tag, content, rest)) = read_tlv(&buf[off..]) else {
                return;
            };
            heads.push(base + off);
            let header = buf.len() - off - rest.len() - content.len();
            if tag & 0x20 != 0 {
                walk(content, base + off + header, heads, depth + 1);
            }
            off = buf.len() - rest.len();
        }
    }
    walk(der, 0, &mut heads, 0);
    let at = if heads.is_empty() {
        0
    } else {
        heads[r.below(heads.len())]
    };
    match r.below(8) {
        // A wrong length octet.
        0 if at + 1 < der.len() => {
            der[at + 1] = match r.below(5) {
                0 => der[at + 1].wrapping_add(1),
                1 => der[at + 1].wrapping_sub(1),
                2 => 0x80, // indefinite
                3 => 0xff,
                _ => r.next() as u8,
            };
        }
        // The length in long, non-minimal form (valid BER, not DER).
        1 if at + 1 < der.len() && der[at + 1] < 0x80 => {
            let n = der[at + 1];
            let extra = 1 + r.below(4);
            let mut len = vec![0x80 | (extra as u8 + 1)];
            len.extend(std::iter::repeat_n(0, extra));
            len.push(n);
            der.splice(at + 1..at + 2, len);
        }
        // A huge length.
        2 if at + 1 < der.len() => {
            der.splice(at + 1..at + 2, [0x84, 0xff, 0xff, 0xff, 0xf0]);
        }
        // Truncate.
        3 => {
            let cut = r.below(der.len());
            der.truncate(cut);
        }
        // Trailing bytes.
        4 => {
            let n = 1 + r.below(8);
            for _ in 0..n {
                der.push(r.next() as u8);
            }
        }
        // Indefinite length with end-of-contents, as BER allows.
        5 if at + 1 < der.len() && der[at] & 0x20 != 0 && der[at + 1] < 0x80 => {
            let n = der[at + 1] as usize;
            if at + 2 + n <= der.len() {
                der.insert(at + 2 + n, 0);
                der.insert(at + 2 + n, 0);
                der[at + 1] = 0x80;
            }
        }
        // Random bit flips anywhere.
        _ => {
            for _ in 0..1 + r.below(4) {
                let p = r.below(der.len());
                der[p] ^= 1 << r.below(8);
            }
        }
    }
}

/// Mutate `seed`: tree mutations (re-encoded with correct lengths), then byte damage.
pub fn mutate(seed: &[u8], tree_ops: &[u64], byte_ops: &[u64], donors: &[Vec<Node>]) -> Vec<u8> {
    let mut tree = parse(seed);
    for &op in tree_ops {
        mutate_tree(&mut tree, op, donors);
    }
    let mut out = write(&tree);
    for &op in byte_ops {
        mutate_bytes(&mut out, op);
    }
    out
}

#[test]
fn parse_write_round_trips() {
    // SEQUENCE { INTEGER 5, OCTET STRING { SEQUENCE { NULL } }, [0] { BOOLEAN } } with a long length.
    let mut long = vec![0x04, 0x81, 200];
    long.extend_from_slice(&[7; 200]);
    let mut der = vec![0x30, 0x81, (3 + 6 + 5 + long.len()) as u8];
    der.extend_from_slice(&[0x02, 0x01, 0x05]);
    der.extend_from_slice(&[0x04, 0x04, 0x30, 0x02, 0x05, 0x00]);
    der.extend_from_slice(&[0xa0, 0x03, 0x01, 0x01, 0xff]);
    der.extend_from_slice(&long);
    let tree = parse(&der);
    assert!(matches!(&tree[0], Node::Cons { children, .. } if children.len() == 4));
    assert_eq!(write(&tree), der);
}
