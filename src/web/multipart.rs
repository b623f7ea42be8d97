//! Strict parsing of `multipart/form-data` bodies (RFC 7578, on the MIME
//! multipart syntax of RFC 2046 §5.1.1): the compose form with its files.
//!
//! Owns: nothing; pure functions.
//!
//! Invariants:
//! - The boundary comes from the Content-Type and is 1-70 characters
//!   (RFC 2046 §5.1.1); the body must be a sequence of parts between
//!   delimiters and end with the close delimiter. Anything else is an
//!   error, never guessed at.
//! - At most `MAX_PARTS` parts and `MAX_PART_HEADER` bytes of headers per
//!   part; text fields are UTF-8 and appear once; file parts keep their
//!   bytes exactly.
//! - A file name loses any path a browser sent (`C:\...\a.pdf`) and every
//!   control character; the size limit of the whole body is the caller's
//!   (the server read at most that much).
//!
//! Reads untrusted input: yes, every compose upload.

/// Most parts one form may have (fields and files together).
pub const MAX_PARTS: usize = 128;
/// Most header bytes one part may have.
const MAX_PART_HEADER: usize = 8 * 1024;
/// Longest file name kept (in characters).
const MAX_FILE_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the body is not multipart/form-data with a usable boundary")]
    NotMultipart,
    #[error("the multipart body is malformed: {0}")]
    Malformed(&'static str),
    #[error("more than {MAX_PARTS} parts")]
    TooManyParts,
    #[error("field {0:?} appears more than once")]
    Repeated(String),
    #[error("a text field is not UTF-8")]
    NotUtf8,
}

/// One uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field's name.
    pub field: String,
    /// The file name, without any path; may be empty.
    pub name: String,
    /// The declared `type/subtype`, lower case; empty when none was sent.
    pub content_type: String,
    pub data: Vec<u8>,
}

/// The text fields and files of one form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultipartForm {
    fields: Vec<(String, String)>,
    pub files: Vec<UploadedFile>,
}

impl MultipartForm {
    /// The value of text field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The boundary of a `multipart/form-data` Content-Type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = params.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim())
    })?;
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    // RFC 2046 §5.1.1: bchars, 1 to 70 of them, not ending in a space.
    let ok = (1..=70).contains(&value.len())
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b));
    ok.then(|| value.to_string())
}

/// Parses `body` sent with `content_type`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<MultipartForm, MultipartError> {
    let boundary = boundary(content_type).ok_or(MultipartError::NotMultipart)?;
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    // The first delimiter may open the body without a CRLF before it.
    let first = &delimiter[2..];
    let mut rest = body.strip_prefix(first).ok_or(MultipartError::Malformed(
        "the body does not start with the boundary",
    ))?;
    let mut form = MultipartForm::default();
    let mut parts = 0;
    loop {
        if rest.starts_with(b"--") {
            return Ok(form);
        }
        rest = skip_padding(rest)
            .strip_prefix(b"\r\n")
            .ok_or(MultipartError::Malformed("no line end after a boundary"))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(MultipartError::TooManyParts);
        }
        let header_end = find(rest, b"\r\n\r\n")
            .filter(|&at| at <= MAX_PART_HEADER)
            .ok_or(MultipartError::Malformed(
                "part headers are missing or too long",
            ))?;
        let headers = &rest[..header_end];
        rest = &rest[header_end + 4..];
        let data_end = find(rest, &delimiter).ok_or(MultipartError::Malformed(
            "a part is not closed by the boundary",
        ))?;
        let data = &rest[..data_end];
        rest = &rest[data_end + delimiter.len()..];
        add_part(&mut form, headers, data)?;
    }
}

/// RFC 2046 §5.1.1 allows linear white space after a delimiter.
fn skip_padding(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &bytes[n..]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(offset) = haystack.get(from..)?.iter().position(|&b| b == first) {
        let at = from + offset;
        if haystack.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn add_part(form: &mut MultipartForm, headers: &[u8], data: &[u8]) -> Result<(), MultipartError> {
    let headers =
        std::str::from_utf8(headers).map_err(|_| MultipartError::Malformed("part headers"))?;
    let mut disposition = None;
    let mut content_type = String::new();
    for line in headers.split("\r\n") {
        let (name, value) = line
            .split_once(':')
            .ok_or(MultipartError::Malformed("a part header line"))?;
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim());
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
        }
    }
    let disposition = disposition.ok_or(MultipartError::Malformed("no Content-Disposition"))?;
    let mut params = split_params(disposition).into_iter();
    if !params
        .next()
        .is_some_and(|(kind, _)| kind.eq_ignore_ascii_case("form-data"))
    {
        return Err(MultipartError::Malformed("not form-data"));
    }
    let (mut field, mut file_name) = (None, None);
    for (key, value) in params {
        if key.eq_ignore_ascii_case("name") {
            field = Some(value);
        } else if key.eq_ignore_ascii_case("filename") {
            file_name = Some(value);
        }
    }
    let field = field.ok_or(MultipartError::Malformed("a part without a name"))?;
    match file_name {
        Some(name) => form.files.push(UploadedFile {
            field,
            name: clean_file_name(&name),
            content_type,
            data: data.to_vec(),
        }),
        None => {
            if form.fields.iter().any(|(n, _)| *n == field) {
                return Err(MultipartError::Repeated(field));
            }
            let value = String::from_utf8(data.to_vec()).map_err(|_| MultipartError::NotUtf8)?;
            form.fields.push((field, value));
        }
    }
    Ok(())
}

/// `form-data; name="a"; filename="b"` into ("form-data", "") and its
/// parameters. Quoted strings may hold `;` and backslash escapes; browsers
/// percent-encode `"`, CR and LF in names (WHATWG HTML §4.10.21.8), which
/// is decoded for those three only.
fn split_params(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(next) = chars.next() {
                                val.push(next);
                            }
                        }
                        c => val.push(c),
                    }
                }
                // Skip anything up to the next parameter.
                while chars.peek().is_some_and(|&c| c != ';') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
            }
        }
        let val = val
            .replace("%22", "\"")
            .replace("%0D", "\r")
            .replace("%0A", "\n");
        out.push((key.trim().to_string(), val.trim().to_string()));
        if chars.next().is_none() {
            return out;
        }
    }
}

/// The last path component, without controls, at most `MAX_FILE_NAME`.
fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    base.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILE_NAME)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
#[path = "multipart_tests.rs"]
mod tests;
