//! A page's content, read strictly: only what a scanned page's content may hold, and nothing left
//! over. lopdf's own content parser stops quietly at the first token it cannot read, while pdf.js
//! skips that token and draws on, so a page could look like a bare scan to the server and show
//! text to the teacher. Here any byte outside this grammar means "not a scan".
//!
//! The grammar: numbers, names, literal and hex strings, one-level arrays (for `TJ`), and operators.
//! The operators allowed: `q`, `Q`, `cm`, one `Do`, and text objects whose text is invisible
//! (render mode 3, as OCR leaves it), with render mode saved and restored by `q`/`Q` as pdf.js does.

/// The most content bytes a scanned page's streams may hold, decoded.
pub const MAX_CONTENT_BYTES: usize = 1 << 20;
/// The deepest `q` nesting accepted.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f32),
    Name(Vec<u8>),
    Text,
    Array,
    Op(Vec<u8>),
}

/// What a page draws when it is a scan: the image's resource name and the transform it is drawn
/// with, `[a b c d e f]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The XObject's name in the page's resources.
    pub name: Vec<u8>,
    /// The current transformation matrix at `Do`.
    pub ctm: [f32; 6],
}

/// The image a page's content draws, if it draws one image and nothing else visible.
pub fn placed_image(content: &[u8]) -> Option<Placed> {
    let tokens = tokenize(content)?;
    let mut stack: Vec<([f32; 6], u8)> = Vec::new();
    let mut ctm = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let mut render_mode = 0u8;
    let mut in_text = false;
    let mut placed = None;
    let mut operands: Vec<Token> = Vec::new();
    for token in tokens {
        let Token::Op(op) = token else {
            operands.push(token);
            if operands.len() > 16 {
                return None;
            }
            continue;
        };
        let nums: Vec<f32> =
            operands.iter().filter_map(|t| if let Token::Number(n) = t { Some(*n) } else { None }).collect();
        match op.as_slice() {
            b"q" if !in_text && stack.len() < MAX_DEPTH => stack.push((ctm, render_mode)),
            b"Q" if !in_text => (ctm, render_mode) = stack.pop()?,
            b"cm" if !in_text && nums.len() == 6 && operands.len() == 6 => {
                ctm = multiply(<[f32; 6]>::try_from(nums).ok()?, ctm);
            }
            b"Do" if !in_text && placed.is_none() => match operands.as_slice() {
                [Token::Name(name)] => placed = Some(Placed { name: name.clone(), ctm }),
                _ => return None,
            },
            b"BT" if !in_text => in_text = true,
            b"ET" if in_text => in_text = false,
            b"Tr" if operands.len() == 1 && nums.len() == 1 => {
                render_mode = if nums[0] == 3.0 { 3 } else { 0 }
            }
            b"Tf" | b"Td" | b"TD" | b"Tm" | b"T*" | b"Tc" | b"Tw" | b"Tz" | b"TL" | b"Ts" if in_text => {}
            b"Tj" | b"TJ" | b"'" | b"\"" if in_text && render_mode == 3 => {}
            _ => return None,
        }
        operands.clear();
    }
    if in_text || !operands.is_empty() {
        return None;
    }
    placed
}

/// `m × ctm`, the PDF way (row vectors).
fn multiply([a, b, c, d, e, f]: [f32; 6], [a2, b2, c2, d2, e2, f2]: [f32; 6]) -> [f32; 6] {
    [
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    ]
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | 0)
}

fn is_delimiter(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

/// Every token of the content, or `None` at the first byte outside the grammar.
fn tokenize(s: &[u8]) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_array = false;
    while i < s.len() {
        let b = s[i];
        if is_space(b) {
            i += 1;
            continue;
        }
        let token = match b {
            b'%' => {
                while i < s.len() && s[i] != b'\n' && s[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'[' if !in_array => {
                in_array = true;
                i += 1;
                continue;
            }
            b']' if in_array => {
                in_array = false;
                i += 1;
                Token::Array
            }
            b'(' => {
                i = literal_end(s, i)?;
                Token::Text
            }
            b'<' => {
                let end = i + 1 + s.get(i + 1..)?.iter().position(|&c| c == b'>')?;
                if !s[i + 1..end].iter().all(|&c| c.is_ascii_hexdigit() || is_space(c)) {
                    return None;
                }
                i = end + 1;
                Token::Text
            }
            b'/' => {
                let start = i + 1;
                i = start;
                while i < s.len() && !is_space(s[i]) && !is_delimiter(s[i]) {
                    i += 1;
                }
                Token::Name(s[start..i].to_vec())
            }
            b'+' | b'-' | b'.' | b'0'..=b'9' => {
                let start = i;
                while i < s.len() && matches!(s[i], b'+' | b'-' | b'.' | b'0'..=b'9') {
                    i += 1;
                }
                Token::Number(std::str::from_utf8(&s[start..i]).ok()?.parse().ok()?)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'\'' | b'"' | b'*' => {
                let start = i;
                while i < s.len() && (s[i].is_ascii_alphabetic() || matches!(s[i], b'\'' | b'"' | b'*')) {
                    i += 1;
                }
                Token::Op(s[start..i].to_vec())
            }
            _ => return None,
        };
        // Inside an array only numbers and strings may stand (a `TJ` operand).
        if in_array {
            if !matches!(token, Token::Number(_) | Token::Text) {
                return None;
            }
            continue;
        }
        out.push(token);
    }
    (!in_array).then_some(out)
}

/// The index after a literal string starting at `s[start] == b'('` (balanced, with escapes).
fn literal_end(s: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 1,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(s: &str) -> Option<[f32; 6]> {
        placed_image(s.as_bytes()).map(|p| p.ctm)
    }

    #[test]
    fn a_scan_with_an_ocr_layer_is_read() {
        let ctm = placed(
            "q 595 0 0 842 0 0 cm /Im Do Q BT 3 Tr /F 28 Tf 250 40 Td (Page \\(1\\)) Tj [(a) -20 <4142>] TJ ET",
        );
        assert_eq!(ctm, Some([595.0, 0.0, 0.0, 842.0, 0.0, 0.0]));
    }

    #[test]
    fn anything_outside_the_grammar_is_not_a_scan() {
        // lopdf would stop at `}` and call this a bare scan; pdf.js would draw the text.
        assert_eq!(placed("q 595 0 0 842 0 0 cm /Im Do Q } BT /F1 40 Tf 50 400 Td (ANSWER) Tj ET"), None);
        assert_eq!(placed("q 595 0 0 842 0 0 cm /Im Do Q BT (x) Tj ET"), None, "visible text");
        assert_eq!(placed("q BT 3 Tr ET Q BT (x) Tj ET /Im Do"), None, "Q restores render mode 0");
        assert_eq!(placed("(x) Tj /Im Do"), None, "text outside BT");
        assert_eq!(placed("/Im Do /Im Do"), None, "two images");
        assert_eq!(placed("q 595 0 0 842 0 0 cm /Im Do Q 0 0 m 10 10 l S"), None, "a path");
        assert_eq!(placed("q [[1]] /Im Do Q"), None, "nested arrays");
        assert_eq!(placed(&"q ".repeat(40)), None, "too deep");
        assert_eq!(placed("/Im Do Q"), None, "Q without q");
        assert_eq!(placed("BT 3 Tr (x"), None, "an open string");
    }
}
