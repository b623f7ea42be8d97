//! Changing a few keys of `appliance.toml` in place (what `campusmail pair
//! init/join` record), keeping every comment and every other line.
//!
//! Invariant: only `key = ...` lines inside the named `[section]` change; a
//! key missing there is added at the section's end; the file is replaced
//! atomically (temp file, fsync, rename), so a crash leaves the old or the
//! new file, never half of one.

use std::io::Write;
use std::path::Path;

/// Sets string `keys` in `[section]` of the TOML file at `path`.
pub fn set_strings(path: &Path, section: &str, keys: &[(&str, &str)]) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let updated = set_in_text(&text, section, keys);
    let tmp = path.with_extension("toml.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(updated.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn quoted(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

pub fn set_in_text(text: &str, section: &str, keys: &[(&str, &str)]) -> String {
    let header = format!("[{section}]");
    let mut out: Vec<String> = Vec::new();
    let mut done = vec![false; keys.len()];
    let mut inside = false;
    let mut seen_section = false;
    let flush_missing = |out: &mut Vec<String>, done: &mut Vec<bool>| {
        for (i, (k, v)) in keys.iter().enumerate() {
            if !done[i] {
                out.push(format!("{k} = {}", quoted(v)));
                done[i] = true;
            }
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if inside {
                flush_missing(&mut out, &mut done);
            }
            inside = trimmed == header;
            seen_section |= inside;
        } else if inside {
            if let Some((k, _)) = trimmed.split_once('=') {
                if let Some(i) = keys.iter().position(|(key, _)| *key == k.trim()) {
                    out.push(format!("{} = {}", keys[i].0, quoted(keys[i].1)));
                    done[i] = true;
                    continue;
                }
            }
        }
        out.push(line.to_string());
    }
    if !seen_section {
        out.push(String::new());
        out.push(header);
    }
    if inside || !seen_section {
        flush_missing(&mut out, &mut done);
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_keys_in_their_section_only() {
        let text = "# top\n[a]\nlisten = \"\"\n\n[pair]\n# where\nlisten = \"\"\npeer = \"\"\n[tls]\ncert = \"x\"\n";
        let out = set_in_text(
            text,
            "pair",
            &[("listen", "10.0.0.1:2700"), ("peer_name", "node-b")],
        );
        assert!(out.contains("[a]\nlisten = \"\"\n"), "{out}");
        assert!(
            out.contains(
                "# where\nlisten = \"10.0.0.1:2700\"\npeer = \"\"\npeer_name = \"node-b\"\n[tls]"
            ),
            "{out}"
        );
        let added = set_in_text("[node]\nname = \"a\"\n", "pair", &[("peer", "h:1")]);
        assert!(added.ends_with("[pair]\npeer = \"h:1\"\n"), "{added}");
        assert!(set_in_text("[pair]\n", "pair", &[("peer", "a\"b")]).contains("peer = \"a\\\"b\""));
    }
}
