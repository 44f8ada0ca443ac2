//! A validating JSON scanner shared by the venues' one-pass readers (issue
//! 22): Binance's `classify` and hot-payload readers, Bybit's `classify` and
//! `Decoder::read`. It builds no values beyond decimals and book levels;
//! each venue says what to read.

use ferrofeed_model::event::Level;
use rust_decimal::Decimal;

use crate::dec::Dec;

/// Marks field `bit` of `seen`; `None` when it was already (serde refuses
/// a repeated field, so the readers leave such frames to it).
pub(crate) fn once(seen: &mut u32, bit: u32) -> Option<()> {
    (*seen & bit == 0).then(|| *seen |= bit)
}

/// A strict, validating JSON scanner for the hot paths (each venue's
/// `classify` and one-pass readers): it reads a frame without building
/// values and answers `None` (meaning "let serde_json decide") on anything
/// it does not handle exactly like serde_json would: any backslash in a
/// string (read or skipped), numbers other than plain integers where a
/// number is read, nesting deeper than [`Scan::MAX_DEPTH`], and of course
/// anything that is not JSON.
///
/// Every value it skips is validated against the JSON grammar as serde_json
/// validates an ignored value (strings free of control characters, numbers
/// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`, the three literals,
/// balanced arrays and objects without trailing commas), so a frame the
/// scanner accepts is one serde_json accepts too.
pub(crate) struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// Nesting the scanner follows before it gives up (serde_json's limit is 128).
    pub(crate) const MAX_DEPTH: usize = 32;

    pub(crate) fn new(s: &'a str) -> Scan<'a> {
        Scan { s, b: s.as_bytes(), i: 0 }
    }

    /// Skips JSON whitespace (the four bytes serde_json skips).
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline(always)]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// Consumes `c` after whitespace.
    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Consumes `text` if the frame continues with exactly it (nothing
    /// skipped): for readers that know a venue's usual layout and fall back
    /// to the general loop (after [`Scan::rewind`]) when it is not there.
    #[inline(always)]
    pub(crate) fn expect(&mut self, text: &str) -> Option<()> {
        let rest = self.b.get(self.i..)?;
        rest.starts_with(text.as_bytes()).then(|| self.i += text.len())
    }

    /// The current byte offset (whitespace not skipped), for [`Scan::rewind`].
    pub(crate) fn position(&self) -> usize {
        self.i
    }

    /// Goes back to a [`Scan::position`].
    pub(crate) fn rewind(&mut self, to: usize) {
        self.i = to.min(self.b.len());
    }

    /// The byte offset of the next value (after whitespace): with
    /// [`Scan::skip_value`], where a value begins and ends in the text.
    pub(crate) fn offset(&mut self) -> usize {
        self.ws();
        self.i
    }

    /// Only whitespace is left (what serde_json's `from_str` requires after the value).
    pub(crate) fn end(&mut self) -> Option<()> {
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    /// A string without escapes: its contents, borrowed. `None` for any
    /// backslash, control character or missing quote.
    #[inline(always)]
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let mut end = start;
        // Binance strings are short (keys of 1–6 bytes, names and decimals
        // of 5–20): a table lookup per byte beats word-at-a-time set-up.
        loop {
            let c = *self.b.get(end)?;
            if STOP[usize::from(c)] {
                if c != b'"' {
                    return None;
                }
                break;
            }
            end += 1;
        }
        self.i = end + 1;
        // Both ends are at ASCII quotes, so this is a char boundary.
        self.s.get(start..end)
    }

    /// A plain non-negative integer (`0` or `[1-9][0-9]*`, no fraction or
    /// exponent) that fits a `u64`. `None` for any other number or value.
    #[inline]
    pub(crate) fn uint(&mut self) -> Option<u64> {
        let c = self.peek()?;
        if !c.is_ascii_digit() {
            return None;
        }
        let start = self.i;
        let mut end = start;
        let mut v: u64 = 0;
        // Eight digits at a time while that cannot overflow (16 digits: the
        // µs times and big ids), then one at a time, checked.
        while end - start < 16
            && let Some(eight) = self.b.get(end..end + 8).and_then(eight_digits)
        {
            v = v * 100_000_000 + eight;
            end += 8;
        }
        while let Some(&d) = self.b.get(end) {
            if !d.is_ascii_digit() {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            end += 1;
        }
        self.i = end;
        if c == b'0' && end - start > 1 {
            return None; // a leading zero is not JSON
        }
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None; // a float: serde_json decides
        }
        Some(v)
    }

    /// A plain integer (optionally negative, never `-0`) that fits an `i64`.
    #[inline]
    pub(crate) fn int(&mut self) -> Option<i64> {
        if self.peek()? == b'-' {
            self.i += 1;
            if !matches!(self.b.get(self.i), Some(b'1'..=b'9')) {
                return None;
            }
            let v = self.uint()?;
            // Down to i64::MIN (2^63).
            return if v <= i64::MAX as u64 + 1 { Some((v as i128).wrapping_neg() as i64) } else { None };
        }
        i64::try_from(self.uint()?).ok()
    }

    /// `true`, `false` or `null` (in that order of the answer's variants).
    #[inline]
    pub(crate) fn literal(&mut self) -> Option<Lit> {
        self.ws();
        let rest = &self.b[self.i..];
        let (lit, n) = if rest.starts_with(b"true") {
            (Lit::True, 4)
        } else if rest.starts_with(b"false") {
            (Lit::False, 5)
        } else if rest.starts_with(b"null") {
            (Lit::Null, 4)
        } else {
            return None;
        };
        self.i += n;
        Some(lit)
    }

    /// Any number, validated against the JSON grammar and skipped.
    fn skip_number(&mut self) -> Option<()> {
        let digits = |sc: &mut Scan<'_>| -> usize {
            let start = sc.i;
            while sc.b.get(sc.i..sc.i + 8).is_some_and(|b| eight_digits(b).is_some()) {
                sc.i += 8;
            }
            while sc.b.get(sc.i).is_some_and(u8::is_ascii_digit) {
                sc.i += 1;
            }
            sc.i - start
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let lead = *self.b.get(self.i)?;
        let n = digits(self);
        if n == 0 || (lead == b'0' && n > 1) {
            return None;
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Any value, validated and skipped; `depth` is the nesting it is at.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.str().map(drop),
            b'{' => {
                if depth >= Scan::MAX_DEPTH {
                    return None;
                }
                self.object(|sc, _| sc.skip_value(depth + 1))
            }
            b'[' => {
                if depth >= Scan::MAX_DEPTH {
                    return None;
                }
                self.array(|sc| sc.skip_value(depth + 1))
            }
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => self.literal().map(drop),
        }
    }

    /// An object: `member` is called with each key (escape-free) and must
    /// consume its value.
    #[inline]
    pub(crate) fn object(&mut self, mut member: impl FnMut(&mut Scan<'a>, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.str()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A decimal string, exactly as [`Dec`] reads it.
    pub(crate) fn dec(&mut self) -> Option<Dec> {
        Decimal::from_str_exact(self.str()?).ok().map(Dec)
    }

    /// An array of `[price, qty]` levels, each exactly two decimal strings
    /// (as the venues' `WireLevel`s read them), wrapped by `wrap`.
    pub(crate) fn levels<L>(&mut self, wrap: fn(Level) -> L) -> Option<Vec<L>> {
        let mut out = Vec::new();
        self.array(|sc| {
            let (mut n, mut price, mut qty) = (0, None, None);
            sc.array(|sc| {
                n += 1;
                match n {
                    1 => price = Some(sc.dec()?.0),
                    2 => qty = Some(sc.dec()?.0),
                    _ => return None,
                }
                Some(())
            })?;
            out.push(wrap(Level { price: price?, qty: qty? }));
            Some(())
        })?;
        Some(out)
    }

    /// An array: `item` is called for each element and must consume it.
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Scan<'a>) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// The value of eight ASCII digits, or `None` if any byte is not a digit.
#[inline(always)]
fn eight_digits(b: &[u8]) -> Option<u64> {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    let v = u64::from_le_bytes(w);
    // Every byte 0x30..=0x39: its high nibble is 3, and adding 6 keeps it 3.
    let all_digits = (v & 0xF0F0_F0F0_F0F0_F0F0) | (v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4;
    if all_digits != 0x3333_3333_3333_3333 {
        return None;
    }
    // Combine neighbours: pairs, then fours, then the eight (first digit most significant).
    let v = v - 0x3030_3030_3030_3030;
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((v * 10_000 + (v >> 32)) & 0xFFFF_FFFF)
}

/// Bytes that end a plain string run: the quote, the backslash and the
/// control characters (which JSON strings may not contain unescaped).
const STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A JSON literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lit {
    True,
    False,
    Null,
}

/// Single-character edits of `frame` at every position, for the tests that
/// compare a one-pass reader with the serde paths: cut, delete, and insert
/// or replace with bytes that matter to JSON, then with each of `tokens`
/// (the fields and fragments a venue's readers care about).
#[cfg(test)]
pub(crate) fn mutants(frame: &str, tokens: &[&str], f: impl FnMut(&str)) {
    const JSON: [&str; 17] =
        ["\"", "\\", ",", "}", "{", "]", "[", " ", "0", "1", "-", ".", "e", "\u{1}", "n", ":", "\u{e9}"];
    let all: Vec<&str> = JSON.iter().chain(tokens).copied().collect();
    edits(frame, &all, f)
}

/// Edits of `frame` at every position: cut there, delete the character
/// there, and insert each of `tokens` there or put it in that character's
/// place.
#[cfg(test)]
pub(crate) fn edits(frame: &str, tokens: &[&str], mut f: impl FnMut(&str)) {
    let cuts: Vec<usize> = (0..=frame.len()).filter(|&i| frame.is_char_boundary(i)).collect();
    let mut buf = String::with_capacity(frame.len() + 32);
    for (k, &i) in cuts.iter().enumerate() {
        f(&frame[..i]);
        let next = cuts.get(k + 1).copied();
        if let Some(j) = next {
            buf.clear();
            buf.push_str(&frame[..i]);
            buf.push_str(&frame[j..]);
            f(&buf);
        }
        for t in tokens {
            buf.clear();
            buf.push_str(&frame[..i]);
            buf.push_str(t);
            buf.push_str(&frame[i..]);
            f(&buf);
            if let Some(j) = next {
                buf.clear();
                buf.push_str(&frame[..i]);
                buf.push_str(t);
                buf.push_str(&frame[j..]);
                f(&buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_digits_reads_exactly_eight_digits() {
        for t in ["00000000", "12345678", "99999999", "10000000", "00000001", "31415926"] {
            assert_eq!(eight_digits(t.as_bytes()), Some(t.parse().unwrap()), "{t}");
        }
        for t in
            ["1234567a", "/2345678", ":2345678", "1234 678", "123456.8", "-1234567", "\u{0}0000000", "1234567\u{ff}"]
        {
            assert_eq!(eight_digits(t.as_bytes().get(..8).unwrap()), None, "{t}");
        }
        // Every single-byte change of a digit run.
        for pos in 0..8 {
            for c in 0..=255u8 {
                let mut b = *b"55555555";
                b[pos] = c;
                let want = std::str::from_utf8(&b)
                    .ok()
                    .filter(|s| s.bytes().all(|d| d.is_ascii_digit()))
                    .map(|s| s.parse().unwrap());
                assert_eq!(eight_digits(&b), want, "{b:?}");
            }
        }
    }

    #[test]
    fn integers_read_like_the_standard_library() {
        let cases = [
            "0",
            "7",
            "10",
            "12345678",
            "123456789",
            "1234567890123456",
            "12345678901234567",
            "999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "00",
            "0123",
            "1.5",
            "1e3",
        ];
        for t in cases {
            let want =
                if t.len() > 1 && t.starts_with('0') || t.contains(['.', 'e']) { None } else { t.parse::<u64>().ok() };
            for tail in ["", ",", "}", " "] {
                let text = format!("{t}{tail}");
                assert_eq!(Scan::new(&text).uint(), want, "{text}");
            }
            let neg = format!("-{t}");
            let want = want.and_then(|v| if v == 0 { None } else { neg.parse::<i64>().ok() });
            assert_eq!(Scan::new(&neg).int(), want, "{neg}");
        }
        assert_eq!(Scan::new("-9223372036854775808").int(), Some(i64::MIN));
        assert_eq!(Scan::new("-9223372036854775809").int(), None);
        assert_eq!(Scan::new("9223372036854775807").int(), Some(i64::MAX));
        assert_eq!(Scan::new("9223372036854775808").int(), None);
    }
}
