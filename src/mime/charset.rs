//! Charset decoding where mail-parser needs help: ISO-2022-KR (RFC 1557),
//! Korean labels it doesn't know (`cp949`, `ms949`, `uhc`, ...), raw 8-bit
//! EUC-KR without a label, and RFC 2047 encoded-words in those charsets.
//!
//! Everything else goes to mail-parser's own `charset_decoder`, then to
//! encoding_rs by WHATWG label. Owns nothing.
//!
//! Untrusted input: all of it (header and body bytes of received mail).
//! Never panics; undecodable bytes become U+FFFD.

use encoding_rs::EUC_KR;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;

const ESC: u8 = 0x1b;
const SO: u8 = 0x0e;
const SI: u8 = 0x0f;
/// Never valid in EUC-KR: marks a bad ISO-2022-KR byte, decoded as U+FFFD.
const BAD: u8 = 0xff;

fn is_iso2022kr(label: &str) -> bool {
    let l = label.trim().to_ascii_lowercase();
    l == "iso-2022-kr" || l == "csiso2022kr" || l == "iso_2022_kr"
}

/// Labels of Unified Hangul Code (CP949) that mail-parser doesn't map;
/// encoding_rs's EUC-KR decoder is the WHATWG one, i.e. CP949.
fn is_cp949_alias(label: &str) -> bool {
    matches!(
        label.trim().to_ascii_lowercase().as_str(),
        "cp949"
            | "ms949"
            | "x-windows-949"
            | "windows949"
            | "uhc"
            | "x-uhc"
            | "ks_c_5601"
            | "ksc5601-1987"
    )
}

/// True for charsets this module decodes and mail-parser gets wrong.
pub fn needs_own_decoder(label: &str) -> bool {
    is_iso2022kr(label) || is_cp949_alias(label)
}

/// Decodes `bytes` in charset `label`; unknown labels are read as UTF-8,
/// or EUC-KR if they aren't valid UTF-8.
pub fn decode(label: &str, bytes: &[u8]) -> String {
    let label = label.trim().trim_matches('"');
    if is_iso2022kr(label) {
        return decode_iso2022kr(bytes);
    }
    if is_cp949_alias(label) {
        return EUC_KR.decode_without_bom_handling(bytes).0.into_owned();
    }
    if let Some(f) = charset_decoder(label.as_bytes()) {
        return f(bytes);
    }
    if let Some(enc) = encoding_rs::Encoding::for_label(label.as_bytes()) {
        return enc.decode_without_bom_handling(bytes).0.into_owned();
    }
    decode_unlabelled(bytes)
}

/// Text with no (or an unknown) charset: UTF-8 if valid, else EUC-KR —
/// the legacy default of Korean mail.
pub fn decode_unlabelled(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => EUC_KR.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

/// ISO-2022-KR (RFC 1557): `ESC $ ) C` designates KS X 1001 as G1, SO
/// shifts to it (each byte pair 0x21-0x7E is an EUC-KR pair minus 0x80),
/// SI shifts back to ASCII. Lines start in ASCII.
pub fn decode_iso2022kr(bytes: &[u8]) -> String {
    let mut euc = Vec::with_capacity(bytes.len());
    let mut shifted = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            ESC => {
                if bytes.get(i + 1..i + 4) == Some(b"$)C") {
                    i += 4;
                } else {
                    euc.push(BAD);
                    i += 1;
                }
                continue;
            }
            SO => shifted = true,
            SI => shifted = false,
            b'\r' | b'\n' => {
                shifted = false;
                euc.push(b);
            }
            0x21..=0x7e if shifted => match bytes.get(i + 1) {
                Some(&b2 @ 0x21..=0x7e) => {
                    euc.push(b | 0x80);
                    euc.push(b2 | 0x80);
                    i += 2;
                    continue;
                }
                _ => euc.push(BAD),
            },
            0x00..=0x7f => euc.push(b),
            _ => euc.push(BAD),
        }
        i += 1;
    }
    EUC_KR.decode_without_bom_handling(&euc).0.into_owned()
}

/// Content-Transfer-Encoding decoding of a body that tolerates junk: bad
/// base64 is decoded from its valid characters, bad QP is left as is.
pub fn transfer_decode(encoding: mail_parser::Encoding, body: &[u8]) -> Vec<u8> {
    match encoding {
        mail_parser::Encoding::Base64 => base64_decode(body).unwrap_or_else(|| {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
                .collect();
            base64_decode(&clean).unwrap_or_default()
        }),
        mail_parser::Encoding::QuotedPrintable => {
            quoted_printable_decode(body).unwrap_or_else(|| body.to_vec())
        }
        mail_parser::Encoding::None => body.to_vec(),
    }
}

/// Does this raw header value need [`decode_header`] rather than
/// mail-parser's decoding? (8-bit bytes that aren't UTF-8, or an
/// encoded-word in a charset from [`needs_own_decoder`].)
pub fn header_needs_own_decoder(raw: &[u8]) -> bool {
    if std::str::from_utf8(raw).is_err() {
        return true;
    }
    let lower = String::from_utf8_lossy(raw).to_ascii_lowercase();
    lower
        .split("=?")
        .skip(1)
        .any(|rest| rest.split('?').next().is_some_and(needs_own_decoder))
}

/// One encoded-word `=?charset?B|Q?text?=` (RFC 2047 §2) at the start of
/// `s`: (charset, decoded bytes, length consumed).
fn encoded_word(s: &str) -> Option<(String, Vec<u8>, usize)> {
    let rest = s.strip_prefix("=?")?;
    let (charset, rest) = rest.split_once('?')?;
    let (enc, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if charset.is_empty() || text.contains(char::is_whitespace) {
        return None;
    }
    // RFC 2231 §5: a language may follow the charset after '*'.
    let charset = charset.split('*').next().unwrap_or(charset).to_string();
    let bytes = match enc {
        "B" | "b" => transfer_decode(mail_parser::Encoding::Base64, text.as_bytes()),
        "Q" | "q" => {
            let t = text.replace('_', " ");
            transfer_decode(mail_parser::Encoding::QuotedPrintable, t.as_bytes())
        }
        _ => return None,
    };
    Some((charset, bytes, s.len() - rest.len() + end + 2))
}

/// Decodes a raw header value: unfolds it, reads 8-bit text as UTF-8 or
/// EUC-KR, and decodes encoded-words (adjacent words in one charset are
/// joined before decoding, so a character split across words survives).
/// With `quote_words`, each decoded run is written as a quoted-string, so
/// an address header can be parsed again without its display name
/// changing meaning.
pub fn decode_header(raw: &[u8], quote_words: bool) -> String {
    let text = decode_unlabelled(raw).replace(['\r', '\n'], "");
    let mut out = String::with_capacity(text.len());
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut gap = String::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        if let Some((charset, bytes, used)) =
            rest.starts_with("=?").then(|| encoded_word(rest)).flatten()
        {
            match &mut pending {
                Some((cs, buf)) if cs.eq_ignore_ascii_case(&charset) => {
                    buf.extend_from_slice(&bytes)
                }
                _ => {
                    flush_word(&mut out, pending.take(), quote_words);
                    pending = Some((charset, bytes));
                }
            }
            // Whitespace between adjacent encoded-words is dropped (§6.2).
            gap.clear();
            rest = &rest[used..];
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() && pending.is_some() {
            gap.push(c);
        } else {
            flush_word(&mut out, pending.take(), quote_words);
            out.push_str(&gap);
            gap.clear();
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    flush_word(&mut out, pending, quote_words);
    out.push_str(&gap);
    out.trim().to_string()
}

fn flush_word(out: &mut String, word: Option<(String, Vec<u8>)>, quote: bool) {
    let Some((charset, bytes)) = word else { return };
    let decoded = decode(&charset, &bytes);
    if quote {
        out.push('"');
        for c in decoded.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(&decoded);
    }
}
