//! Name-value pairs (spec §3.4): the incremental `NvParser` that reads a
//! PARAMS (or GET_VALUES) stream across record boundaries, the `Params`
//! collection it produces, and `encode_pair` for the opposite direction.
//! Names and values are kept as exact bytes: binary, case preserved.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Largest length a name or value can declare (31 bits).
pub const MAX_NV_LEN: usize = 0x7FFF_FFFF;

/// Why a name-value stream could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NvError {
    /// The stream (or a pair it declares) goes beyond the configured cap.
    #[error("name-value stream exceeds its size limit")]
    TooLarge,
    /// The stream ended inside a pair.
    #[error("name-value stream ends inside a pair")]
    Truncated,
    /// The stream holds more pairs than the configured cap.
    #[error("name-value stream holds too many pairs")]
    TooManyPairs,
}

/// Reads the concatenation of a stream's records, one `feed` per record.
///
/// Input is copied once into an internal buffer; the names and values of
/// complete pairs are zero-copy slices of it. Nothing is reserved from a
/// declared length: memory grows only with bytes actually received, and the
/// total is capped at `max_total`.
#[derive(Debug)]
pub struct NvParser {
    pending: BytesMut,
    pairs: Vec<(Bytes, Bytes)>,
    received: usize,
    max_total: usize,
    max_pairs: usize,
    /// Pairs added with `push`, which do not count against `max_pairs`.
    pushed: usize,
}

/// The lengths that open a pair and how many bytes they took.
struct PairHead {
    head_len: usize,
    name_len: usize,
    value_len: usize,
}

impl NvParser {
    /// A parser that fails with `TooLarge` past `max_total` stream bytes.
    pub fn new(max_total: usize) -> Self {
        Self::with_limits(max_total, usize::MAX)
    }

    /// As [`NvParser::new`], and fails with `TooManyPairs` past `max_pairs` pairs.
    pub fn with_limits(max_total: usize, max_pairs: usize) -> Self {
        NvParser {
            pending: BytesMut::new(),
            // What nginx's fastcgi.conf sends, give or take: one allocation.
            pairs: Vec::with_capacity(TYPICAL_PAIRS.min(max_pairs)),
            received: 0,
            max_total,
            max_pairs,
            pushed: 0,
        }
    }

    /// Appends the next piece of the stream and parses every pair it completes.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), NvError> {
        self.received = self
            .received
            .checked_add(data.len())
            .filter(|&total| total <= self.max_total)
            .ok_or(NvError::TooLarge)?;
        self.pending.extend_from_slice(data);
        while let Some(pair) = self.next_pair()? {
            if self.pairs.len() - self.pushed >= self.max_pairs {
                return Err(NvError::TooManyPairs);
            }
            self.pairs.push(pair);
        }
        Ok(())
    }

    /// Adds a pair of our own ahead of the stream's, outside its limits.
    pub fn push(&mut self, name: Bytes, value: Bytes) {
        self.pairs.push((name, value));
        self.pushed += 1;
    }

    /// Ends the stream. Fails if it stopped inside a pair.
    pub fn finish(self) -> Result<Params, NvError> {
        if !self.pending.is_empty() {
            return Err(NvError::Truncated);
        }
        Ok(Params::from_pairs(self.pairs))
    }

    /// Takes one complete pair off `pending`, if there is one.
    fn next_pair(&mut self) -> Result<Option<(Bytes, Bytes)>, NvError> {
        let Some(head) = read_head(&self.pending) else {
            return Ok(None);
        };
        let pair_len = head
            .head_len
            .checked_add(head.name_len)
            .and_then(|len| len.checked_add(head.value_len))
            .ok_or(NvError::TooLarge)?;
        // Stream offset where this pair starts, plus its length, must fit the cap.
        let start = self.received - self.pending.len();
        if pair_len > self.max_total - start {
            return Err(NvError::TooLarge);
        }
        if self.pending.len() < pair_len {
            return Ok(None);
        }
        self.pending.advance(head.head_len);
        let name = self.pending.split_to(head.name_len).freeze();
        let value = self.pending.split_to(head.value_len).freeze();
        Ok(Some((name, value)))
    }
}

/// Reads one length at the start of `buf`: `(length, bytes used)`.
fn read_len(buf: &[u8]) -> Option<(usize, usize)> {
    let first = *buf.first()?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    let bytes: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(bytes) & 0x7FFF_FFFF;
    Some((usize::try_from(len).ok()?, 4))
}

/// Reads the name and value lengths, if both are complete in `buf`.
fn read_head(buf: &[u8]) -> Option<PairHead> {
    let (name_len, used_name) = read_len(buf)?;
    let (value_len, used_value) = read_len(&buf[used_name..])?;
    Some(PairHead {
        head_len: used_name + used_value,
        name_len,
        value_len,
    })
}

/// Bytes `encode_pair` writes for this pair.
pub fn pair_len(name: &[u8], value: &[u8]) -> usize {
    len_size(name.len()) + len_size(value.len()) + name.len() + value.len()
}

fn len_size(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        4
    }
}

fn put_len(len: usize, dst: &mut BytesMut) {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => dst.put_u8(short),
        _ => {
            let long = u32::try_from(len)
                .ok()
                .filter(|&long| long <= 0x7FFF_FFFF)
                .expect("name-value length over 2^31-1");
            dst.put_u32(long | 0x8000_0000);
        }
    }
}

/// Appends one pair: lengths (1 byte below 128, else 4), name, value.
///
/// # Panics
/// If the name or the value is longer than `MAX_NV_LEN` bytes.
pub fn encode_pair(name: &[u8], value: &[u8], dst: &mut BytesMut) {
    dst.reserve(pair_len(name, value));
    put_len(name.len(), dst);
    put_len(value.len(), dst);
    dst.put_slice(name);
    dst.put_slice(value);
}

/// About how many params a web server sends per request.
const TYPICAL_PAIRS: usize = 48;

/// Up to this many pairs are folded without a hash map.
const SMALL: usize = 64;

/// The parameters of one request, one entry per distinct name.
///
/// A repeated name keeps the **last** value (as php-fpm does) at the
/// position of its **first** occurrence (php-fpm's hash keeps that order
/// too). `iter` yields entries in that order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(Bytes, Bytes)>,
}

impl Params {
    /// Builds the collection from pairs in arrival order, folding duplicates.
    pub fn from_pairs(pairs: Vec<(Bytes, Bytes)>) -> Self {
        if pairs.len() <= SMALL {
            return Params::fold_small(pairs);
        }
        let mut slot_of: HashMap<Bytes, usize> = HashMap::new();
        let mut unique: Vec<(Bytes, Bytes)> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            match slot_of.get(&name) {
                Some(&slot) => unique[slot].1 = value,
                None => {
                    slot_of.insert(name.clone(), unique.len());
                    unique.push((name, value));
                }
            }
        }
        Params { pairs: unique }
    }

    /// From text pairs, for tools and tests.
    pub fn from_text(pairs: &[(&str, &str)]) -> Self {
        let copy = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        Params::from_pairs(pairs.iter().map(|(n, v)| (copy(n), copy(v))).collect())
    }

    /// Folding by linear search: for the few dozen params of a normal
    /// request this beats hashing every name.
    /// It works in place: the first `kept` entries are the distinct names so far.
    fn fold_small(mut pairs: Vec<(Bytes, Bytes)>) -> Self {
        let mut kept = 0;
        for i in 0..pairs.len() {
            match pairs[..kept]
                .iter()
                .position(|(seen, _)| *seen == pairs[i].0)
            {
                Some(slot) => pairs[slot].1 = std::mem::take(&mut pairs[i].1),
                None => {
                    pairs.swap(kept, i);
                    kept += 1;
                }
            }
        }
        pairs.truncate(kept);
        Params { pairs }
    }

    /// The value for `name` (exact, case-sensitive bytes).
    pub fn get(&self, name: &[u8]) -> Option<&Bytes> {
        self.pairs
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value)
    }

    /// Every distinct name with its final value, ordered by first occurrence.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.pairs.iter().map(|(name, value)| (name, value))
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs at all.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_folding_agree() {
        for n in [3usize, SMALL, SMALL + 1, 500] {
            let pairs: Vec<(Bytes, Bytes)> = (0..n)
                .map(|i| {
                    (
                        Bytes::from(format!("N{}", i % 7)),
                        Bytes::from(format!("v{i}")),
                    )
                })
                .collect();
            let params = Params::from_pairs(pairs);
            assert_eq!(params.len(), n.min(7));
            let last = (0..n).rev().find(|i| i % 7 == 0).unwrap();
            assert_eq!(params.get(b"N0"), Some(&Bytes::from(format!("v{last}"))));
            let names: Vec<&[u8]> = params.iter().map(|(k, _)| k.as_ref()).collect();
            assert_eq!(names[0], b"N0");
        }
    }

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    fn stream(pairs: &[(&[u8], &[u8])]) -> BytesMut {
        let mut dst = BytesMut::new();
        for (name, value) in pairs {
            encode_pair(name, value, &mut dst);
        }
        dst
    }

    fn parse_all(data: &[u8]) -> Result<Params, NvError> {
        let mut parser = NvParser::new(1 << 20);
        parser.feed(data)?;
        parser.finish()
    }

    fn collect(params: &Params) -> Vec<(Vec<u8>, Vec<u8>)> {
        params
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn encodes_short_lengths_in_one_byte() {
        let mut dst = BytesMut::new();
        encode_pair(b"AB", b"xyz", &mut dst);
        assert_eq!(&dst[..], b"\x02\x03ABxyz");
        assert_eq!(pair_len(b"AB", b"xyz"), dst.len());
    }

    #[test]
    fn encodes_127_and_128_boundary() {
        let n127 = vec![b'n'; 127];
        let v128 = vec![b'v'; 128];
        let mut dst = BytesMut::new();
        encode_pair(&n127, &v128, &mut dst);
        assert_eq!(dst[0], 127);
        assert_eq!(&dst[1..5], &[0x80, 0, 0, 128]);
        assert_eq!(dst.len(), 1 + 4 + 127 + 128);
        assert_eq!(pair_len(&n127, &v128), dst.len());

        let mut dst = BytesMut::new();
        encode_pair(&v128, &n127, &mut dst);
        assert_eq!(&dst[0..4], &[0x80, 0, 0, 128]);
        assert_eq!(dst[4], 127);
    }

    #[test]
    fn encodes_large_length_big_endian() {
        let value = vec![0u8; 0x0001_0203];
        let mut dst = BytesMut::new();
        encode_pair(b"", &value, &mut dst);
        assert_eq!(&dst[..5], &[0, 0x80, 0x01, 0x02, 0x03]);
    }

    #[test]
    fn parses_127_128_boundary_for_names_and_values() {
        for name_len in [0, 1, 126, 127, 128, 129, 300] {
            for value_len in [0, 1, 126, 127, 128, 129, 300] {
                let name = vec![b'N'; name_len];
                let value = vec![b'V'; value_len];
                let params = parse_all(&stream(&[(&name, &value)])).unwrap();
                assert_eq!(params.len(), 1);
                assert_eq!(params.get(&name).unwrap(), &value[..]);
            }
        }
    }

    #[test]
    fn accepts_four_byte_form_for_short_lengths() {
        let data = b"\x80\x00\x00\x04\x80\x00\x00\x02HOSTab\x80\x00\x00\x00\x00";
        let params = parse_all(data).unwrap();
        assert_eq!(params.get(b"HOST").unwrap(), &b"ab"[..]);
        assert_eq!(params.get(b"").unwrap(), &b""[..]);
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn four_byte_form_masks_only_the_marker_bit() {
        // 0xFF top byte: high bit is the marker, the remaining 0x7F000003 is huge.
        let data = b"\xFF\x00\x00\x03\x00abc";
        let mut parser = NvParser::new(1 << 20);
        assert_eq!(parser.feed(data), Err(NvError::TooLarge));
    }

    #[test]
    fn keeps_binary_bytes_and_case() {
        let name: &[u8] = b"Na\x00me\xFF";
        let value: &[u8] = b"\x00\x01\x80\xFE\r\n";
        let data = stream(&[(name, value), (b"name", b"lower"), (b"NAME", b"upper")]);
        let params = parse_all(&data).unwrap();
        assert_eq!(params.len(), 3);
        assert_eq!(params.get(name).unwrap(), value);
        assert_eq!(params.get(b"name").unwrap(), &b"lower"[..]);
        assert_eq!(params.get(b"NAME").unwrap(), &b"upper"[..]);
        assert_eq!(params.get(b"Name"), None);
    }

    #[test]
    fn empty_values_and_empty_names() {
        let data = stream(&[(b"EMPTY", b""), (b"", b"nameless"), (b"", b"")]);
        let params = parse_all(&data).unwrap();
        assert_eq!(params.get(b"EMPTY").unwrap(), &b""[..]);
        assert_eq!(params.get(b"").unwrap(), &b""[..]);
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn empty_stream_gives_empty_params() {
        let params = NvParser::new(0).finish().unwrap();
        assert!(params.is_empty());
        assert_eq!(params.len(), 0);
        let mut parser = NvParser::new(0);
        parser.feed(b"").unwrap();
        assert!(parser.finish().unwrap().is_empty());
    }

    #[test]
    fn last_duplicate_wins_at_first_position() {
        let data = stream(&[
            (b"A", b"1"),
            (b"B", b"2"),
            (b"A", b"3"),
            (b"C", b"4"),
            (b"A", b"5"),
        ]);
        let params = parse_all(&data).unwrap();
        assert_eq!(params.get(b"A").unwrap(), &b"5"[..]);
        assert_eq!(params.len(), 3);
        assert_eq!(
            collect(&params),
            vec![
                (b"A".to_vec(), b"5".to_vec()),
                (b"B".to_vec(), b"2".to_vec()),
                (b"C".to_vec(), b"4".to_vec()),
            ]
        );
    }

    #[test]
    fn iter_keeps_arrival_order() {
        let names: Vec<Vec<u8>> = (0..40).map(|i| format!("P{i:02}").into_bytes()).collect();
        let pairs: Vec<(Bytes, Bytes)> = names.iter().rev().map(|n| (b(n), b(b"v"))).collect();
        let params = Params::from_pairs(pairs.clone());
        let order: Vec<&Bytes> = params.iter().map(|(n, _)| n).collect();
        let expected: Vec<&Bytes> = pairs.iter().map(|(n, _)| n).collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn straddles_records_at_every_split_point() {
        let long_name = vec![b'L'; 200];
        let long_value: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b"SCRIPT_FILENAME", b"/var/www/index.php"),
            (&long_name, b"short"),
            (b"", b""),
            (b"QUERY", &long_value),
            (b"X", b""),
        ];
        let data = stream(&pairs);
        let whole = parse_all(&data).unwrap();
        for split in 0..=data.len() {
            let mut parser = NvParser::new(data.len());
            parser.feed(&data[..split]).unwrap();
            parser.feed(&data[split..]).unwrap();
            assert_eq!(parser.finish().unwrap(), whole, "split at {split}");
        }
        assert_eq!(whole.get(b"QUERY").unwrap(), &long_value[..]);
        assert_eq!(whole.get(&long_name).unwrap(), &b"short"[..]);
    }

    #[test]
    fn straddles_records_at_every_pair_of_split_points() {
        let value = vec![b'v'; 130];
        let data = stream(&[(b"AB", b"cd"), (b"E", &value), (b"F", b"g")]);
        let whole = parse_all(&data).unwrap();
        for first in 0..=data.len() {
            for second in first..=data.len() {
                let mut parser = NvParser::new(data.len());
                parser.feed(&data[..first]).unwrap();
                parser.feed(&data[first..second]).unwrap();
                parser.feed(&data[second..]).unwrap();
                assert_eq!(parser.finish().unwrap(), whole);
            }
        }
    }

    #[test]
    fn byte_by_byte_feeding() {
        let data = stream(&[(b"REQUEST_METHOD", b"POST"), (&[b'k'; 128], &[7u8; 128])]);
        let mut parser = NvParser::new(data.len());
        for byte in data.iter() {
            parser.feed(std::slice::from_ref(byte)).unwrap();
        }
        let params = parser.finish().unwrap();
        assert_eq!(params.get(b"REQUEST_METHOD").unwrap(), &b"POST"[..]);
        assert_eq!(params.get(&[b'k'; 128]).unwrap(), &[7u8; 128][..]);
    }

    #[test]
    fn truncated_stream_at_every_cut_is_an_error() {
        let data = stream(&[(b"NAME", b"value"), (&[b'n'; 130], b"v")]);
        let first_pair = 2 + 4 + 5;
        for cut in 1..data.len() {
            let mut parser = NvParser::new(1 << 20);
            parser.feed(&data[..cut]).unwrap();
            let result = parser.finish();
            if cut == first_pair {
                assert_eq!(result.unwrap().len(), 1);
            } else {
                assert_eq!(result, Err(NvError::Truncated), "cut at {cut}");
            }
        }
    }

    #[test]
    fn truncated_inside_a_four_byte_length() {
        assert_eq!(parse_all(b"\x80\x00"), Err(NvError::Truncated));
        assert_eq!(parse_all(b"\x01\x80\x00\x00"), Err(NvError::Truncated));
        assert_eq!(parse_all(b"\x05"), Err(NvError::Truncated));
    }

    #[test]
    fn total_over_the_cap_is_too_large() {
        let data = stream(&[(b"A", b"1234")]);
        let mut parser = NvParser::new(data.len());
        parser.feed(&data).unwrap();
        assert_eq!(parser.feed(b"\x00"), Err(NvError::TooLarge));

        let mut parser = NvParser::new(data.len() - 1);
        assert_eq!(parser.feed(&data), Err(NvError::TooLarge));
    }

    #[test]
    fn cap_is_counted_across_feeds() {
        let mut parser = NvParser::new(10);
        parser.feed(b"\x01\x01ab").unwrap();
        parser.feed(b"\x01\x01cd").unwrap();
        assert_eq!(parser.feed(b"\x01\x01"), Err(NvError::TooLarge));
    }

    #[test]
    fn declared_pair_beyond_the_cap_fails_early() {
        // Only the 8 length bytes arrived, but the pair would not fit in 1 KiB.
        let mut parser = NvParser::new(1024);
        assert_eq!(parser.feed(b"\x80\x00\x04\x00\x00"), Err(NvError::TooLarge));
        let mut parser = NvParser::new(1024);
        parser.feed(b"\x02\x00AB").unwrap();
        // 4 bytes used; a pair of 5 + 127 + 889 bytes would end at 1025.
        assert_eq!(parser.feed(b"\x7F\x80\x00\x03\x79"), Err(NvError::TooLarge));
        // One byte less ends exactly at the cap: accepted, still incomplete.
        let mut parser = NvParser::new(1024);
        parser.feed(b"\x02\x00AB").unwrap();
        parser.feed(b"\x7F\x80\x00\x03\x78").unwrap();
    }

    #[test]
    fn huge_declared_length_does_not_allocate() {
        let mut parser = NvParser::new(usize::MAX);
        // Name and value both declare 2^31-1 bytes; only a few arrive.
        parser
            .feed(b"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFFsome bytes")
            .unwrap();
        assert!(parser.pending.capacity() < 4096);
        assert_eq!(parser.finish(), Err(NvError::Truncated));
    }

    #[test]
    fn received_counter_cannot_overflow() {
        let mut parser = NvParser::new(usize::MAX);
        parser.received = usize::MAX - 1;
        assert_eq!(parser.feed(b"ab"), Err(NvError::TooLarge));
    }

    #[test]
    fn get_on_params_from_pairs() {
        let params = Params::from_pairs(vec![(b(b"a"), b(b"1")), (b(b"b"), b(b"2"))]);
        assert_eq!(params.get(b"a").unwrap(), &b"1"[..]);
        assert_eq!(params.get(b"b").unwrap(), &b"2"[..]);
        assert_eq!(params.get(b"c"), None);
        assert!(!params.is_empty());
        assert!(Params::default().is_empty());
    }

    #[test]
    fn round_trip_many_pairs() {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..300usize)
            .map(|i| (format!("HTTP_X_{i}").into_bytes(), vec![b'x'; i]))
            .collect();
        let mut data = BytesMut::new();
        for (n, v) in &pairs {
            encode_pair(n, v, &mut data);
        }
        let params = parse_all(&data).unwrap();
        assert_eq!(params.len(), 300);
        let got = collect(&params);
        assert_eq!(got, pairs);
    }
}
