//! Where a body's strings and brackets are, found 64 bytes at a time: the positions, in
//! order, of every quote that opens or closes a string and of every `{ } [ ] ,` outside
//! strings ([`Tokens`]). The scans of [`super::skim`] and [`super::check_depth`] step from
//! one such position to the next, or from bracket to bracket where only the nesting counts
//! ([`Scan::next_bracket`]), instead of visiting every byte and searching every string for
//! its end.
//!
//! Each block of 64 bytes becomes bit masks of its quotes, backslashes, brackets and commas
//! (SSE2 compares on x86-64, a byte loop elsewhere). Which quotes a backslash escapes, and
//! which bytes lie inside strings, then follow from a few whole-word operations, carried
//! from block to block (the technique of simdjson's first stage: Langdale and Lemire,
//! "Parsing Gigabytes of JSON per Second", 2019). A string is thereby what the byte-by-byte
//! scans take it to be — from a quote to the next quote no backslash escapes — as long as
//! no backslash stands outside a string; JSON has none there, and a body that has one makes
//! [`Tokens`] give up ([`OutsideBackslash`]), so that the caller scans it byte by byte
//! instead ([`ByteScan`]) and every body gets exactly the answer it always got.
//!
//! A reader can keep the tokens it found ([`Tokens::recording`]) for a second reader of the
//! same bytes ([`Tokens::replaying`], [`RecordedTokens`]): a HubSpot page's skim and its
//! decoder find them once.

/// A scan of a body from token to token: [`Tokens`], or [`ByteScan`] for a body it gives up
/// on. The scans built on it are written once, over this.
pub(super) trait Scan {
    /// Why the scan gives up on a body.
    type GaveUp;

    /// The next token (a quote opening a string, or `{ } [ ] ,` outside strings), `None` at
    /// the end of the body.
    fn next_token(&mut self) -> Result<Option<usize>, Self::GaveUp>;

    /// The next `{ } [ ]` outside strings, the tokens before it passed over: for a scan that
    /// needs only the nesting, as a page's skim does inside the values it does not read.
    fn next_bracket(&mut self) -> Result<Option<usize>, Self::GaveUp>;

    /// The closing quote of the string whose opening quote was the last token (the body's
    /// length if the string is cut off); the scan goes on after it.
    fn string_end(&mut self) -> Result<usize, Self::GaveUp>;
}

/// The tokens found byte by byte (strings skipped with [`super::string_end`]), whatever the
/// body holds: a backslash outside strings is one more byte that is no token.
#[derive(Debug)]
pub(super) struct ByteScan<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> ByteScan<'a> {
    /// The scan of `body`, from its start.
    pub(super) fn new(body: &'a [u8]) -> Self {
        ByteScan { body, at: 0 }
    }
}

impl Scan for ByteScan<'_> {
    type GaveUp = std::convert::Infallible;

    fn next_token(&mut self) -> Result<Option<usize>, Self::GaveUp> {
        while let Some(&byte) = self.body.get(self.at) {
            self.at += 1;
            if matches!(byte, b'"' | b'{' | b'}' | b'[' | b']' | b',') {
                return Ok(Some(self.at - 1));
            }
        }
        Ok(None)
    }

    fn next_bracket(&mut self) -> Result<Option<usize>, Self::GaveUp> {
        while let Some(at) = self.next_token()? {
            match self.body[at] {
                b'"' => {
                    self.string_end()?;
                }
                b',' => {}
                _ => return Ok(Some(at)),
            }
        }
        Ok(None)
    }

    fn string_end(&mut self) -> Result<usize, Self::GaveUp> {
        let end = super::string_end(self.body, self.at).min(self.body.len());
        self.at = end + 1;
        Ok(end)
    }
}

impl Scan for Tokens<'_> {
    type GaveUp = OutsideBackslash;

    #[inline]
    fn next_token(&mut self) -> Result<Option<usize>, OutsideBackslash> {
        self.next()
    }

    #[inline]
    fn next_bracket(&mut self) -> Result<Option<usize>, OutsideBackslash> {
        loop {
            let brackets = self.bits & self.brackets;
            if brackets != 0 {
                let at = self.block_at + brackets.trailing_zeros() as usize;
                // Pass over the bracket and every token before it.
                let lowest = brackets & brackets.wrapping_neg();
                self.bits &= !(lowest | (lowest - 1));
                return Ok(Some(at));
            }
            if self.next_block >= self.body.len() {
                self.bits = 0;
                return Ok(None);
            }
            self.read_block()?;
        }
    }

    #[inline]
    fn string_end(&mut self) -> Result<usize, OutsideBackslash> {
        Ok(self.next()?.unwrap_or(self.body.len()))
    }
}

/// A backslash outside any string: the body is not JSON, and its strings are not
/// necessarily where [`Tokens`] would put them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OutsideBackslash;

/// The positions of a body's string quotes and of its `{ } [ ] ,` outside strings, in order.
#[derive(Debug)]
pub(super) struct Tokens<'a> {
    body: &'a [u8],
    /// Where the block whose tokens are in `bits` starts.
    block_at: usize,
    /// The tokens of that block not yet returned, one bit per byte.
    bits: u64,
    /// Which of that block's tokens are brackets.
    brackets: u64,
    /// Where the next block starts.
    next_block: usize,
    /// Whether the first byte of the next block is escaped by a backslash ending this one.
    escaped_carry: u64,
    /// All ones when the next block starts inside a string, else zero.
    in_string_carry: u64,
    /// Each block's tokens as they were read, when kept for another reader of the body.
    record: Option<Vec<[u64; 2]>>,
    /// Another reader's tokens of this very body (its first blocks), taken instead of
    /// reading those blocks again.
    replay: &'a RecordedTokens,
}

/// A body's tokens as a [`Tokens`] read them: per block, its tokens and which of them are
/// brackets, for the blocks read; and the carries after the last of them, from which a
/// reader of the same body goes on past them. A HubSpot page is read twice — skimmed on its
/// source's task, then decoded on another thread — and the second reader takes the first
/// one's tokens instead of finding them again.
#[derive(Debug)]
pub(crate) struct RecordedTokens {
    blocks: Vec<[u64; 2]>,
    escaped_carry: u64,
    in_string_carry: u64,
}

/// No body's tokens: what a [`Tokens`] that replays nothing replays.
static NOTHING_RECORDED: RecordedTokens = RecordedTokens {
    blocks: Vec::new(),
    escaped_carry: 0,
    in_string_carry: 0,
};

/// Bytes per block: one bit each in a `u64`.
const BLOCK: usize = 64;

impl<'a> Tokens<'a> {
    /// The tokens of `body`, from its start.
    pub(super) fn new(body: &'a [u8]) -> Self {
        Tokens {
            body,
            block_at: 0,
            bits: 0,
            brackets: 0,
            next_block: 0,
            escaped_carry: 0,
            in_string_carry: 0,
            record: None,
            replay: &NOTHING_RECORDED,
        }
    }

    /// The tokens of `body`, each block's kept as it is read ([`Tokens::recorded`]).
    pub(super) fn recording(body: &'a [u8]) -> Self {
        Tokens {
            record: Some(Vec::with_capacity(body.len().div_ceil(BLOCK))),
            ..Tokens::new(body)
        }
    }

    /// The tokens of `body`, taking those of its first blocks from `recorded`: what a
    /// [`Tokens::recording`] of these very bytes kept. The blocks after them are read.
    pub(super) fn replaying(body: &'a [u8], recorded: &'a RecordedTokens) -> Self {
        Tokens {
            replay: recorded,
            ..Tokens::new(body)
        }
    }

    /// What a [`Tokens::recording`] kept of the blocks it read (`None` for any other).
    pub(super) fn recorded(self) -> Option<RecordedTokens> {
        Some(RecordedTokens {
            blocks: self.record?,
            escaped_carry: self.escaped_carry,
            in_string_carry: self.in_string_carry,
        })
    }

    /// The next token's position, `None` at the end of the body.
    #[inline]
    pub(super) fn next(&mut self) -> Result<Option<usize>, OutsideBackslash> {
        while self.bits == 0 {
            if self.next_block >= self.body.len() {
                return Ok(None);
            }
            self.read_block()?;
        }
        let at = self.block_at + self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Ok(Some(at))
    }

    fn read_block(&mut self) -> Result<(), OutsideBackslash> {
        let at = self.next_block;
        if let Some(&[bits, brackets]) = self.replay.blocks.get(at / BLOCK) {
            (self.block_at, self.bits, self.brackets) = (at, bits, brackets);
            self.next_block = at + BLOCK;
            if self.next_block / BLOCK == self.replay.blocks.len() {
                // Past the recording, blocks are read from where its reader stopped.
                self.escaped_carry = self.replay.escaped_carry;
                self.in_string_carry = self.replay.in_string_carry;
            }
            return Ok(());
        }
        let rest = &self.body[at..];
        let masks = if let Some(block) = rest.first_chunk::<BLOCK>() {
            Masks::of(block)
        } else {
            // The last, short block: padded with spaces, which are no token.
            let mut block = [b' '; BLOCK];
            block[..rest.len()].copy_from_slice(rest);
            Masks::of(&block)
        };
        let escaped = self.escaped(masks.backslashes);
        let quotes = masks.quotes & !escaped;
        // Inside a string: from its opening quote (included) to its closing one (not).
        let in_string = prefix_xor(quotes) ^ self.in_string_carry;
        if masks.backslashes & !in_string != 0 {
            return Err(OutsideBackslash);
        }
        self.in_string_carry = ((in_string as i64) >> 63) as u64;
        self.block_at = at;
        self.brackets = masks.brackets & !in_string;
        self.bits = quotes | self.brackets | (masks.commas & !in_string);
        self.next_block = at + BLOCK;
        if let Some(record) = &mut self.record {
            record.push([self.bits, self.brackets]);
        }
        Ok(())
    }

    /// The bytes a backslash escapes: the one after each odd-numbered backslash of a run
    /// (`\\` escapes the second backslash, which escapes nothing; `\\\"` escapes the quote).
    fn escaped(&mut self, backslashes: u64) -> u64 {
        const EVEN_BITS: u64 = 0x5555_5555_5555_5555;
        // A backslash escaped by the last one of the previous block starts nothing.
        let backslashes = backslashes & !self.escaped_carry;
        let follows_escape = (backslashes << 1) | self.escaped_carry;
        // Runs that start on an odd bit, added to the backslashes, carry to the run's end:
        // the sum marks, just past each run, whether the run started on an even or odd bit.
        let odd_starts = backslashes & !EVEN_BITS & !follows_escape;
        let (even_started, overflow) = odd_starts.overflowing_add(backslashes);
        self.escaped_carry = u64::from(overflow);
        (EVEN_BITS ^ (even_started << 1)) & follows_escape
    }
}

/// Each bit set where the bit itself or an odd number of the bits below it are set: the
/// bytes from an opening quote up to, not including, its closing quote.
#[inline]
fn prefix_xor(mut bits: u64) -> u64 {
    bits ^= bits << 1;
    bits ^= bits << 2;
    bits ^= bits << 4;
    bits ^= bits << 8;
    bits ^= bits << 16;
    bits ^= bits << 32;
    bits
}

/// One block's bytes of each kind, one bit per byte (bit `i` = byte `i`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Masks {
    quotes: u64,
    backslashes: u64,
    /// `{ } [ ]`
    brackets: u64,
    commas: u64,
}

impl Masks {
    /// The masks with the widest compares the processor has: AVX2 (32 bytes each) when it
    /// has them — every x86-64 server of the last decade; the check is one cached flag —
    /// else SSE2 (16 bytes each, every x86-64 processor).
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline]
    fn of(block: &[u8; BLOCK]) -> Masks {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `avx2` is the function's one target feature, and the processor has
            // it (checked on the line above): the call cannot reach an instruction the
            // processor lacks. With the one below, the crate's second exception to
            // `unsafe_code = "deny"` (Cargo.toml): the calls of the vector scans.
            #[allow(unsafe_code)]
            unsafe {
                Masks::avx2(block)
            }
        } else {
            Masks::sse2_of(block)
        }
    }

    /// [`Masks::sse2`], which every x86-64 build may call.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline]
    fn sse2_of(block: &[u8; BLOCK]) -> Masks {
        // SAFETY: `sse2` is the function's one target feature, and this build has it
        // enabled (the `cfg` above; every x86-64 processor has SSE2): the call cannot reach
        // an instruction the processor lacks.
        #[allow(unsafe_code)]
        unsafe {
            Masks::sse2(block)
        }
    }

    /// [`Masks::of`] with AVX2: 32 bytes per compare, two per block where SSE2 needs four.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[target_feature(enable = "avx2")]
    fn avx2(block: &[u8; BLOCK]) -> Masks {
        use std::arch::x86_64::_mm256_set_epi64x;
        let word =
            |at: usize| i64::from_le_bytes(block[at..at + 8].try_into().expect("eight bytes"));
        let low = Masks::avx2_half(_mm256_set_epi64x(word(24), word(16), word(8), word(0)));
        let high = Masks::avx2_half(_mm256_set_epi64x(word(56), word(48), word(40), word(32)));
        Masks {
            quotes: low.quotes | high.quotes << 32,
            backslashes: low.backslashes | high.backslashes << 32,
            brackets: low.brackets | high.brackets << 32,
            commas: low.commas | high.commas << 32,
        }
    }

    /// The masks of 32 bytes, in the low half of each.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[target_feature(enable = "avx2")]
    #[inline]
    fn avx2_half(v: std::arch::x86_64::__m256i) -> Masks {
        use std::arch::x86_64::{
            _mm256_cmpeq_epi8, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
        };
        let byte = |b: u8| _mm256_set1_epi8(b as i8);
        let bits = |m| u64::from(_mm256_movemask_epi8(m) as u32);
        // `[` `]` are `{` `}` with bit 0x20 cleared: one compare each catches both.
        let folded = _mm256_or_si256(v, byte(0x20));
        Masks {
            quotes: bits(_mm256_cmpeq_epi8(v, byte(b'"'))),
            backslashes: bits(_mm256_cmpeq_epi8(v, byte(b'\\'))),
            brackets: bits(_mm256_or_si256(
                _mm256_cmpeq_epi8(folded, byte(b'{')),
                _mm256_cmpeq_epi8(folded, byte(b'}')),
            )),
            commas: bits(_mm256_cmpeq_epi8(v, byte(b','))),
        }
    }

    /// [`Masks::of`] with SSE2: 16 bytes per compare.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[target_feature(enable = "sse2")]
    fn sse2(block: &[u8; BLOCK]) -> Masks {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
        };
        let byte = |b: u8| _mm_set1_epi8(b as i8);
        let (quote, backslash, comma, case) = (byte(b'"'), byte(b'\\'), byte(b','), byte(0x20));
        // `[` `]` are `{` `}` with bit 0x20 cleared: one compare each catches both.
        let (open, close) = (byte(b'{'), byte(b'}'));
        let mut masks = Masks::default();
        for (lane, sixteen) in block.chunks_exact(16).enumerate() {
            let word = |from: usize| {
                i64::from_le_bytes(sixteen[from..from + 8].try_into().expect("eight bytes"))
            };
            let v = _mm_set_epi64x(word(8), word(0));
            let folded = _mm_or_si128(v, case);
            let bits = |m| u64::from(_mm_movemask_epi8(m) as u16) << (16 * lane);
            masks.quotes |= bits(_mm_cmpeq_epi8(v, quote));
            masks.backslashes |= bits(_mm_cmpeq_epi8(v, backslash));
            masks.brackets |= bits(_mm_or_si128(
                _mm_cmpeq_epi8(folded, open),
                _mm_cmpeq_epi8(folded, close),
            ));
            masks.commas |= bits(_mm_cmpeq_epi8(v, comma));
        }
        masks
    }

    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    #[inline]
    fn of(block: &[u8; BLOCK]) -> Masks {
        Masks::bytewise(block)
    }

    /// The masks read byte by byte: the portable version, and what the vector one must
    /// agree with.
    #[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
    fn bytewise(block: &[u8; BLOCK]) -> Masks {
        let mut masks = Masks::default();
        for (i, b) in block.iter().enumerate() {
            let bit = 1u64 << i;
            match b {
                b'"' => masks.quotes |= bit,
                b'\\' => masks.backslashes |= bit,
                b'{' | b'}' | b'[' | b']' => masks.brackets |= bit,
                b',' => masks.commas |= bit,
                _ => {}
            }
        }
        masks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokens as the byte-by-byte scans see them (`None`: a backslash outside strings).
    fn bytewise_tokens(body: &[u8]) -> Option<Vec<usize>> {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'"' => {
                    tokens.push(i);
                    let mut j = i + 1;
                    while j < body.len() && body[j] != b'"' {
                        j += if body[j] == b'\\' { 2 } else { 1 };
                    }
                    if j < body.len() {
                        tokens.push(j);
                    }
                    i = j;
                }
                b'{' | b'}' | b'[' | b']' | b',' => tokens.push(i),
                b'\\' => return None,
                _ => {}
            }
            i += 1;
        }
        Some(tokens)
    }

    /// The tokens of a [`Scan`], each string's closing quote included (`None`: it gave up).
    fn scanned(body: &[u8], mut scan: impl Scan) -> Option<Vec<usize>> {
        let mut found = Vec::new();
        while let Some(at) = scan.next_token().ok()? {
            found.push(at);
            if body[at] == b'"' {
                let end = scan.string_end().ok()?;
                if end < body.len() {
                    found.push(end);
                }
            }
        }
        Some(found)
    }

    /// The brackets of a [`Scan`] (`None`: it gave up).
    fn bracket_scan(mut scan: impl Scan) -> Option<Vec<usize>> {
        let mut found = Vec::new();
        while let Some(at) = scan.next_bracket().ok()? {
            found.push(at);
        }
        Some(found)
    }

    fn tokens(body: &[u8]) -> Option<Vec<usize>> {
        let mut tokens = Tokens::new(body);
        let mut found = Vec::new();
        loop {
            match tokens.next() {
                Ok(Some(at)) => found.push(at),
                Ok(None) => return Some(found),
                Err(OutsideBackslash) => return None,
            }
        }
    }

    /// A body of fewer than `max_len` bytes, mostly quotes, backslashes and brackets: short
    /// strings, runs of backslashes of every length, strings and escapes across blocks.
    fn generated_body(next: &mut impl FnMut() -> u64, max_len: usize) -> Vec<u8> {
        let alphabet = b"\"\"\"\\\\\\{}[],:a 0\xc3\xa9";
        let len = next() as usize % max_len;
        (0..len)
            .map(|_| {
                let pick = next() as usize % (alphabet.len() + 12);
                alphabet.get(pick).copied().unwrap_or(b'x')
            })
            .collect()
    }

    /// The brackets among `tokens` of `body`.
    fn brackets_of(body: &[u8], tokens: Option<&Vec<usize>>) -> Option<Vec<usize>> {
        tokens.map(|tokens| {
            let bracket = |at: &&usize| matches!(body[**at], b'{' | b'}' | b'[' | b']');
            tokens.iter().filter(bracket).copied().collect()
        })
    }

    /// A pseudo-random sequence, the same on every run.
    fn sequence() -> impl FnMut() -> u64 {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        }
    }

    /// A way of computing a block's masks, named.
    type MasksOf = (&'static str, fn(&[u8; BLOCK]) -> Masks);

    /// Every way this build and processor can compute the masks.
    fn vector_masks() -> Vec<MasksOf> {
        let mut ways: Vec<MasksOf> = vec![("of", Masks::of)];
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        {
            ways.push(("sse2", Masks::sse2_of));
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor has AVX2 (checked on the line above).
                #[allow(unsafe_code)]
                ways.push(("avx2", |block| unsafe { Masks::avx2(block) }));
            }
        }
        ways
    }

    #[test]
    fn vector_masks_agree_with_the_bytewise_ones() {
        let ways = vector_masks();
        let mut next = sequence();
        // Random bytes, and random picks of the token bytes and a few others, so that every
        // kind fills blocks densely in both halves.
        let picks = b"\"\\{}[],;z |\x7f\xa2";
        for round in 0..10_000 {
            let block: [u8; BLOCK] = std::array::from_fn(|_| {
                let r = next();
                if round % 2 == 0 {
                    r as u8
                } else {
                    picks[r as usize % picks.len()]
                }
            });
            for (name, masks) in &ways {
                assert_eq!(masks(&block), Masks::bytewise(&block), "{name}: {block:?}");
            }
        }
        let every: Vec<u8> = (0..=255).collect();
        for block in every.chunks_exact(BLOCK) {
            let block: &[u8; BLOCK] = block.try_into().unwrap();
            for (name, masks) in &ways {
                assert_eq!(masks(block), Masks::bytewise(block), "{name}");
            }
        }
    }

    #[test]
    fn tokens_agree_with_a_byte_by_byte_scan() {
        // Short strings, runs of backslashes of every length (inside strings: a body with one
        // outside must say so), and bodies up to four blocks long, so that strings, escapes and
        // runs cross block boundaries.
        let mut next = sequence();
        let mut outside = 0;
        for _ in 0..40_000 {
            let body = generated_body(&mut next, 260);
            let expected = bytewise_tokens(&body);
            if expected.is_none() {
                outside += 1;
            }
            let text = String::from_utf8_lossy(&body);
            assert_eq!(tokens(&body), expected, "{text:?}");
            assert_eq!(scanned(&body, Tokens::new(&body)), expected, "{text:?}");
            if expected.is_some() {
                assert_eq!(scanned(&body, ByteScan::new(&body)), expected, "{text:?}");
            }
            let brackets = brackets_of(&body, expected.as_ref());
            assert_eq!(bracket_scan(Tokens::new(&body)), brackets, "{text:?}");
            if brackets.is_some() {
                assert_eq!(bracket_scan(ByteScan::new(&body)), brackets, "{text:?}");
            }
        }
        assert!(outside > 1_000 && outside < 39_000, "{outside}");
    }

    /// A reader that takes another's recorded tokens finds every token and bracket that a
    /// reader of its own finds, whether the recorder read the whole body or stopped after any
    /// token (the rest is then read from where it stopped), and gives up where it gives up.
    #[test]
    fn replayed_tokens_are_the_tokens_read_afresh() {
        let mut next = sequence();
        let mut partial = 0;
        for _ in 0..20_000 {
            let body = generated_body(&mut next, 330);
            let len = body.len();
            let expected = bytewise_tokens(&body);
            let text = String::from_utf8_lossy(&body);
            // The recorder stops after `stop` tokens (all of them, often).
            let stop = next() as usize % (len / 4 + 2);
            let mut recorder = Tokens::recording(&body);
            let mut read = 0;
            while read < stop && matches!(recorder.next(), Ok(Some(_))) {
                read += 1;
            }
            let Some(recorded) = recorder.recorded() else {
                panic!("a recording Tokens keeps what it read")
            };
            if recorded.blocks.len() < body.len().div_ceil(BLOCK) {
                partial += 1;
            }
            assert_eq!(
                scanned(&body, Tokens::replaying(&body, &recorded)),
                expected,
                "{text:?} after {stop}"
            );
            let brackets = brackets_of(&body, expected.as_ref());
            assert_eq!(
                bracket_scan(Tokens::replaying(&body, &recorded)),
                brackets,
                "{text:?} after {stop}"
            );
        }
        assert!(partial > 1_000, "{partial}");
        assert!(Tokens::new(b"{}").recorded().is_none());
    }

    #[test]
    fn escapes_are_carried_across_blocks() {
        // A string whose backslashes end exactly at a block's last byte: an odd run escapes
        // the quote that starts the next block, an even run does not.
        for run in 1..=5 {
            let mut body = b"{\"a\":\"".to_vec();
            body.resize(BLOCK - run, b'x');
            body.extend(std::iter::repeat_n(b'\\', run));
            body.extend(b"\"[1]\"}");
            assert_eq!(body[BLOCK], b'"');
            assert_eq!(tokens(&body), bytewise_tokens(&body), "run of {run}");
            let closes_at_block = tokens(&body).unwrap().contains(&BLOCK);
            assert_eq!(closes_at_block, run % 2 == 0, "run of {run}");
        }
    }
}
