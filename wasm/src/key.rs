//! Route-key normalisation on raw bytes, the mirror of router/src/matcher/route-key.ts (which
//! documents the semantics; keep the two in step, the differential tests check they agree).
//! Everything works in place on the caller's scratch buffer, so a request's bytes are copied once
//! (by JS, into linear memory) and never allocated.

pub const MAX_HOST_BYTES: usize = 253;
pub const MAX_PATH_BYTES: usize = 4096;
pub const MAX_RAW_HOST_BYTES: usize = 1024;

/// The most dots a valid host can have (253 bytes of one-byte labels); `Dots` holds their positions.
pub const MAX_DOTS: usize = 127;
pub type Dots = [u16; MAX_DOTS];

const BAD: u8 = 0;
const PLAIN: u8 = 1;
const DOT: u8 = 2;
const COLON: u8 = 3;
const STAR: u8 = 4;

/// Byte classes for the one-pass host scan: printable ASCII except `/ ? # \` is allowed.
const CLASS: [u8; 256] = {
    let mut t = [BAD; 256];
    let mut c = 0x21;
    while c <= 0x7e {
        t[c] = PLAIN;
        c += 1;
    }
    t[b'/' as usize] = BAD;
    t[b'?' as usize] = BAD;
    t[b'#' as usize] = BAD;
    t[b'\\' as usize] = BAD;
    t[b'.' as usize] = DOT;
    t[b':' as usize] = COLON;
    t[b'*' as usize] = STAR;
    t
};

/// Normalises a raw host in place: strips the port, lower-cases, strips one trailing dot, validates.
/// Returns the normalised length (the host is `raw[..n]`) and the number of dots in it, whose
/// positions are written to `dots`; None if refused. One pass over the bytes: this runs per request.
pub fn normalise_host(raw: &mut [u8], allow_wildcard: bool, dots: &mut Dots) -> Option<(usize, usize)> {
    let len = raw.len();
    if len > MAX_RAW_HOST_BYTES || len == 0 {
        return None;
    }
    if raw[0] == b'[' {
        return normalise_bracketed(raw, dots);
    }
    let (mut i, mut dot_count) = match scan_plain_words(raw, dots) {
        Some(done) => done,
        None => return None,
    };
    let mut star = false;
    while i < len {
        let c = raw[i];
        match CLASS[c as usize] {
            PLAIN => raw[i] = c.to_ascii_lowercase(),
            DOT => {
                // An empty label: a leading dot or two in a row.
                if i == 0 || raw[i - 1] == b'.' || dot_count == MAX_DOTS {
                    return None;
                }
                dots[dot_count] = i as u16;
                dot_count += 1;
            }
            COLON => break,
            STAR => {
                if !allow_wildcard || i != 0 {
                    return None;
                }
                star = true;
            }
            _ => return None,
        }
        i += 1;
    }
    if !raw[i..].iter().skip(1).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut n = i;
    if n > 0 && raw[n - 1] == b'.' {
        n -= 1;
        dot_count -= 1;
    }
    if n == 0 || n > MAX_HOST_BYTES {
        return None;
    }
    // `*` only as a whole leftmost label of a registered key, and not the whole host.
    if star && !(n > 2 && raw[1] == b'.') {
        return None;
    }
    Some((n, dot_count))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// 0x80 in each byte of `w` that lies in `lo..=hi`, 0 in the others. Exact for bytes below 0x80; a
/// byte of 0x80 or more is never in range (checked for every value) but may carry into the next
/// byte's sum, so only a word whose every byte is in range can be trusted: `scan_plain_words` only
/// uses words that are.
#[inline]
fn in_range(w: u64, lo: u8, hi: u8) -> u64 {
    w.wrapping_add((0x80 - lo as u64) * ONES) & !w.wrapping_add((0x7f - hi as u64) * ONES) & HIGHS
}

/// The common host, 8 bytes at a time: while every byte is a letter, a digit, `-` or `.`, lower-
/// cases the word and records its dots. Returns where the byte loop must take over (the first word
/// holding anything else: a port, a `*`, a bad byte) and the dots so far; None for an empty label.
/// Branch-free per word, where the byte loop takes a jump-table branch per byte.
#[inline]
fn scan_plain_words(raw: &mut [u8], dots: &mut Dots) -> Option<(usize, usize)> {
    let len = raw.len();
    let mut dot_count = 0;
    let mut i = 0;
    // `from` skips bytes of a word already done (the last word may overlap the one before).
    let mut word = |raw: &mut [u8], at: usize, from: usize, dot_count: &mut usize| -> Option<bool> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&raw[at..at + 8]);
        let w = u64::from_le_bytes(bytes);
        let upper = in_range(w, b'A', b'Z');
        let plain = in_range(w, b'a', b'z') | upper | in_range(w, b'0', b'9') | in_range(w, b'-', b'.');
        if plain != HIGHS {
            return Some(false);
        }
        raw[at..at + 8].copy_from_slice(&(w | upper >> 2).to_le_bytes());
        let mut dot_bits = in_range(w, b'.', b'.') & (!0u64 << (8 * (from - at)));
        while dot_bits != 0 {
            let pos = at + (dot_bits.trailing_zeros() / 8) as usize;
            // An empty label: a leading dot or two in a row.
            if pos == 0 || (*dot_count > 0 && dots[*dot_count - 1] as usize + 1 == pos) || *dot_count == MAX_DOTS {
                return None;
            }
            dots[*dot_count] = pos as u16;
            *dot_count += 1;
            dot_bits &= dot_bits - 1;
        }
        Some(true)
    };
    while i + 8 <= len {
        if !word(raw, i, i, &mut dot_count)? {
            return Some((i, dot_count));
        }
        i += 8;
    }
    if i < len && len >= 8 && word(raw, len - 8, i, &mut dot_count)? {
        i = len;
    }
    Some((i, dot_count))
}

/// An IPv6 literal (`[::1]:8080`): the port, if any, follows the closing bracket. Rare, so plain.
fn normalise_bracketed(raw: &mut [u8], dots: &mut Dots) -> Option<(usize, usize)> {
    let close = raw.iter().position(|&c| c == b']')?;
    let mut n = raw.len();
    if close + 1 < raw.len() {
        if raw[close + 1] != b':' || !raw[close + 2..].iter().all(|c| c.is_ascii_digit()) {
            return None;
        }
        n = close + 1;
    }
    raw[..n].make_ascii_lowercase();
    if raw[n - 1] == b'.' {
        n -= 1;
    }
    if n > MAX_HOST_BYTES {
        return None;
    }
    let mut dot_count = 0;
    for i in 0..n {
        let class = CLASS[raw[i] as usize];
        if class == DOT {
            if i == 0 || raw[i - 1] == b'.' || dot_count == MAX_DOTS {
                return None;
            }
            dots[dot_count] = i as u16;
            dot_count += 1;
        } else if class != PLAIN && class != COLON {
            return None;
        }
    }
    Some((n, dot_count))
}

/// Where the parts of a registered uri (`host[:port][/path][?query]`) lie.
pub struct UriParts {
    /// The raw host is `uri[..host_end]`; `host_end` is also where the path's `/` is.
    pub host_end: usize,
    /// The path's segments are `uri[host_end + 1..path_end]`, trailing slashes trimmed; none if
    /// `path_end <= host_end`.
    pub path_end: usize,
}

/// Splits a registered uri; None if its path is too long. `complete` is false when the caller's
/// buffer cut the uri short: it is then accepted only if the cut fell inside the query.
pub fn split_uri(uri: &[u8], complete: bool) -> Option<UriParts> {
    let query_at = uri.iter().position(|&c| c == b'?' || c == b'#');
    if !complete && query_at.is_none() {
        return None;
    }
    let end = query_at.unwrap_or(uri.len());
    let host_end = uri[..end].iter().position(|&c| c == b'/').unwrap_or(end);
    let mut path_end = end;
    while path_end > host_end && uri[path_end - 1] == b'/' {
        path_end -= 1;
    }
    if path_end > host_end && path_end - host_end > MAX_PATH_BYTES {
        return None;
    }
    Some(UriParts { host_end, path_end })
}

/// The end of the path segment starting at `start` (a `/`, `?`, `#` or the end), lower-casing the
/// segment in place on the way: segments are only read as far as the trie can still match.
#[inline]
pub fn segment_end_lowercasing(path: &mut [u8], start: usize) -> usize {
    let mut i = start;
    while i < path.len() {
        let c = path[i];
        if c == b'/' || c == b'?' || c == b'#' {
            break;
        }
        path[i] = c.to_ascii_lowercase();
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str, wildcard: bool) -> Option<String> {
        let mut bytes = s.as_bytes().to_vec();
        let mut dots = [0u16; MAX_DOTS];
        normalise_host(&mut bytes, wildcard, &mut dots).map(|(n, d)| {
            let host = String::from_utf8(bytes[..n].to_vec()).unwrap();
            let expected: Vec<usize> = host.match_indices('.').map(|(i, _)| i).collect();
            assert_eq!(dots[..d].iter().map(|&i| i as usize).collect::<Vec<_>>(), expected, "{:?}", s);
            host
        })
    }

    #[test]
    fn hosts_normalise_like_route_key_ts() {
        assert_eq!(host("App.Example.COM:8080", false).as_deref(), Some("app.example.com"));
        assert_eq!(host("app.example.com.", false).as_deref(), Some("app.example.com"));
        assert_eq!(host("app.example.com.:443", false).as_deref(), Some("app.example.com"));
        assert_eq!(host("[::1]:8080", false).as_deref(), Some("[::1]"));
        assert_eq!(host("[::1].", false), None);
        assert_eq!(host("[A.B]", false).as_deref(), Some("[a.b]"));
        assert_eq!(host("a.b.c:", false).as_deref(), Some("a.b.c"));
        assert_eq!(host("localhost:", false).as_deref(), Some("localhost"));
        assert_eq!(host("*.example.com", true).as_deref(), Some("*.example.com"));
        for bad in ["", ".", "a..b", ".a", "a..", "a b", "a/b", "a?b", "a#b", "a\\b", "a:x", "[::1", "é.com", "*", "*.", "a*.com", "a.*.com", "*.*.com", "*:80", "*.:80", "[::1]x", "[::1]:8x", "a.com..", ".", "a\0b"] {
            assert_eq!(host(bad, true), None, "{:?}", bad);
        }
        assert_eq!(host("*.example.com", false), None);
        assert_eq!(host(&format!("{}.com", "a".repeat(250)), false), None);
        assert!(host(&format!("{}.com", "a".repeat(249)), false).is_some());
    }

    /// The rules of route-key.ts spelled out naively, byte by byte: the oracle for the word-at-a-time
    /// scan (hosts without `[`).
    fn naive(raw: &[u8], wildcard: bool) -> Option<String> {
        if raw.is_empty() || raw.len() > MAX_RAW_HOST_BYTES {
            return None;
        }
        let colon = raw.iter().position(|&c| c == b':').unwrap_or(raw.len());
        if !raw[(colon + 1).min(raw.len())..].iter().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut host = raw[..colon].to_ascii_lowercase();
        if host.last() == Some(&b'.') {
            host.pop();
        }
        if host.is_empty() || host.len() > MAX_HOST_BYTES || host.split(|&c| c == b'.').any(|l| l.is_empty()) {
            return None;
        }
        for (i, &c) in host.iter().enumerate() {
            let star_ok = c == b'*' && wildcard && i == 0 && host.len() > 2 && host[1] == b'.';
            if !(0x21..=0x7e).contains(&c) || b"/?#\\".contains(&c) || (c == b'*' && !star_ok) {
                return None;
            }
        }
        Some(String::from_utf8(host).unwrap())
    }

    #[test]
    fn the_word_at_a_time_scan_agrees_with_the_rules_at_every_offset() {
        // Dots, capitals, ports and bad bytes at and around every 8-byte boundary.
        let alphabet: &[u8] = b"abcxyzAQZ019-.....:*/_~ \x80\xff";
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..300_000 {
            let len = (next() % 40) as usize;
            let mut raw: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            if case % 2 == 0 {
                // Mostly plain: keep only letters, digits, `-` and `.` but one in 16 bytes.
                for c in raw.iter_mut() {
                    if !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.') && next() % 16 != 0 {
                        *c = b'a';
                    }
                }
            }
            let wildcard = next() % 2 == 0;
            let expected = naive(&raw, wildcard);
            let mut bytes = raw.clone();
            let mut dots = [0u16; MAX_DOTS];
            let got = normalise_host(&mut bytes, wildcard, &mut dots).map(|(n, d)| {
                let expected_dots: Vec<u16> = bytes[..n].iter().enumerate().filter(|(_, &c)| c == b'.').map(|(i, _)| i as u16).collect();
                assert_eq!(&dots[..d], &expected_dots[..], "{:?}", raw);
                String::from_utf8(bytes[..n].to_vec()).unwrap()
            });
            assert_eq!(got, expected, "{:?} (wildcard {})", raw, wildcard);
        }
    }

    #[test]
    fn uris_split_at_path_and_query() {
        let p = split_uri(b"app.com/api/v1/?x=/y", true).unwrap();
        assert_eq!((p.host_end, p.path_end), (7, 14));
        let p = split_uri(b"app.com/", true).unwrap();
        assert!(p.path_end <= p.host_end);
        let p = split_uri(b"app.com?q/x", true).unwrap();
        assert_eq!((p.host_end, p.path_end), (7, 7));
        assert!(split_uri(b"app.com/abc", false).is_none());
        assert!(split_uri(b"app.com/abc?trunc", false).is_some());
        let long = format!("app.com/{}", "x".repeat(4095));
        assert!(split_uri(long.as_bytes(), true).is_some());
        let long = format!("app.com/{}", "x".repeat(4096));
        assert!(split_uri(long.as_bytes(), true).is_none());
    }
}
