//! Every secret this process has seen (the admin token, each minted token and
//! embed session), so that text from outside (an API error body that echoes
//! the Authorization header, a command's output under `set -x`) can be cleaned
//! before it is printed, logged, thrown to a script or put in a table.
//!
//! A secret is found whole, and also by any of a few 16-character windows
//! inside it, the redaction then running both ways as far as the text keeps
//! matching: a server that echoes a header cut short must not leak most of
//! the token. A long secret's windows sit at a quarter, a half and three
//! quarters of its length and at its end, so its last 16 characters (a JWT's
//! signature) are found too, and at its start, so its first 16 are; but not
//! at a JWT's start, which is the same header for every token (and no
//! secret: the signature is what makes a token). A secret of at most 32
//! characters has no such header and little to spare: its windows are its
//! first 16 characters, its last 16 and the 16 between, so its first or last
//! 16 characters, or any 23 in a row, are found. A secret folded across
//! lines or split by spaces is found in the text without its whitespace.
//! Text is cleaned before it is cut, never after.
//!
//! Process-wide on purpose: a secret must not leak through a path that forgot
//! to ask, and every part of a run (workers, the clean-up, the REPL) shares it.

use aho_corasick::AhoCorasick;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};
use std::sync::{Arc, RwLock};

/// Shorter values are not worth a search (and would redact innocent text).
const MIN_LEN: usize = 8;
/// How long a window inside a secret identifies it.
const ANCHOR: usize = 16;
/// How every JWT starts: `{"` in base64url.
const JWT_HEADER: &str = "eyJ";

/// Windows of one length: a hash of the window's bytes → where such a window
/// sits (secret index, byte offset), the text compared with the secret on a
/// hit. Small on purpose: ten thousand minted tokens keep fifty thousand.
type Windows = HashMap<u64, Places, BuildHasherDefault<Prehashed>>;

/// The secrets a window is in: nearly always one.
enum Places {
    One(u32, u32),
    Many(Vec<(u32, u32)>),
    /// In more than [`MAX_SHARED`] secrets: what they have in common (the
    /// base64 of a JWT's header, in every base64-encoded token), not what
    /// tells one from another. Not looked for: each hit would be every one
    /// of them, in any text that holds such a string. Their other windows
    /// still find them.
    Common,
}

/// Secrets a window may be in and still be looked for.
const MAX_SHARED: usize = 4;

impl Places {
    fn add(&mut self, place: (u32, u32)) {
        match self {
            Places::One(i, o) => *self = Places::Many(vec![(*i, *o), place]),
            Places::Many(v) if v.len() < MAX_SHARED => v.push(place),
            Places::Many(_) | Places::Common => *self = Places::Common,
        }
    }

    fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let (one, many) = match self {
            Places::One(i, o) => (Some((*i, *o)), &[][..]),
            Places::Many(v) => (None, &v[..]),
            Places::Common => (None, &[][..]),
        };
        one.into_iter()
            .chain(many.iter().copied())
            .map(|(i, o)| (i as usize, o as usize))
    }
}

/// The keys of [`Windows`] are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Every secret, and how to find it. Registering one is cheap and cleaning
/// text costs its length, however many secrets there are: a run that mints
/// ten thousand tokens keeps three small windows of each in a hash map, not an
/// automaton of them all.
#[derive(Default)]
struct Registry {
    secrets: Vec<Arc<str>>,
    known: HashSet<Arc<str>>,
    /// Secrets the script revealed on purpose: kept out of the cleaning of
    /// the script's own output (they are still cleaned from outside text).
    revealed: HashSet<Arc<str>>,
    /// Secrets of at most `ANCHOR` characters, found whole: their indexes, and
    /// an automaton of the first `short_built` of them (rebuilt when text is
    /// next cleaned, not at each registration).
    short: Vec<usize>,
    short_ac: Option<AhoCorasick>,
    short_built: usize,
    /// Windows of longer secrets, by their length in bytes: the window's bytes
    /// → (secret index, byte offset of the window in the secret).
    windows: HashMap<usize, Windows>,
    /// Hashes the windows (keyed per process).
    hasher: RandomState,
}

static REGISTRY: RwLock<Option<Registry>> = RwLock::new(None);

/// Remembers a secret so that [`clean`] removes it from outside text.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_LEN {
        return;
    }
    let mut guard = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    let r = guard.get_or_insert_with(Registry::default);
    if r.known.contains(secret) {
        return;
    }
    let secret: Arc<str> = Arc::from(secret);
    let idx = r.secrets.len();
    r.secrets.push(secret.clone());
    r.known.insert(secret.clone());
    let chars: Vec<usize> = secret
        .char_indices()
        .map(|(b, _)| b)
        .chain([secret.len()])
        .collect();
    let n = chars.len() - 1;
    if n <= ANCHOR {
        r.short.push(idx);
        return;
    }
    // Windows inside it (see the module for where).
    let mut offsets: Vec<usize> = if n <= 2 * ANCHOR {
        vec![0, (n - ANCHOR) / 2, n - ANCHOR]
    } else {
        // A JWT's start is its header, the same for every token (and no
        // secret): a window there would match every token at once.
        let head = (!secret.starts_with(JWT_HEADER)).then_some(0);
        head.into_iter()
            .chain([n / 4, n / 2, 3 * n / 4, n - ANCHOR])
            .map(|at| at.min(n - ANCHOR))
            .collect()
    };
    offsets.dedup();
    for at in offsets {
        let window = &secret.as_bytes()[chars[at]..chars[at + ANCHOR]];
        let place = (idx as u32, chars[at] as u32);
        let key = r.hasher.hash_one(window);
        r.windows
            .entry(window.len())
            .or_default()
            .entry(key)
            .and_modify(|p| p.add(place))
            .or_insert(Places::One(place.0, place.1));
    }
}

/// The script revealed this secret: what the script itself prints may show it.
pub fn allow(secret: &str) {
    let mut guard = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    let r = guard.get_or_insert_with(Registry::default);
    r.revealed.insert(Arc::from(secret.trim()));
}

/// The byte spans of `text` that hold (part of) a secret, each with its secret.
/// `whole`: also secrets of at most 16 characters, found whole.
fn spans(
    r: &Registry,
    text: &str,
    respect_reveals: bool,
    whole: bool,
) -> Vec<(usize, usize, usize)> {
    let bytes = text.as_bytes();
    // (start, end) of a window or whole secret found, and (secret, offset).
    let mut hits: Vec<(usize, usize, usize, usize)> = Vec::new();
    if let Some(ac) = r.short_ac.as_ref().filter(|_| whole) {
        for hit in ac.find_overlapping_iter(text) {
            let idx = r.short[hit.pattern().as_usize()];
            hits.push((hit.start(), hit.end(), idx, 0));
        }
    }
    for (&len, windows) in &r.windows {
        for (at, _) in text.char_indices() {
            let Some(window) = bytes.get(at..at + len) else {
                break;
            };
            if let Some(found) = windows.get(&r.hasher.hash_one(window)) {
                for (idx, offset) in found.iter() {
                    // The hash only says where to look.
                    if r.secrets[idx].as_bytes().get(offset..offset + len) == Some(window) {
                        hits.push((at, at + len, idx, offset));
                    }
                }
            }
        }
    }
    let mut found: Vec<(usize, usize, usize)> = Vec::new();
    for (hit_start, hit_end, idx, offset) in hits {
        let secret = &r.secrets[idx];
        if respect_reveals && r.revealed.contains(secret) {
            continue;
        }
        let secret = secret.as_bytes();
        // Both ways, as far as the text keeps matching the secret.
        let (mut start, mut j) = (hit_start, offset);
        while start > 0 && j > 0 && bytes[start - 1] == secret[j - 1] {
            start -= 1;
            j -= 1;
        }
        let (mut end, mut k) = (hit_end, offset + (hit_end - hit_start));
        while end < bytes.len() && k < secret.len() && bytes[end] == secret[k] {
            end += 1;
            k += 1;
        }
        // Whole characters: a span that ends inside one must still merge
        // with the next span that starts in it.
        found.push((floor(text, start), ceil(text, end), idx));
    }
    found.sort();
    merge(found)
}

/// Sorted spans with overlaps merged (a whole secret is found by each of its
/// windows).
fn merge(found: Vec<(usize, usize, usize)>) -> Vec<(usize, usize, usize)> {
    let mut merged: Vec<(usize, usize, usize)> = Vec::new();
    for (s, e, i) in found {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e, i)),
        }
    }
    merged
}

fn replace<'a>(text: &'a str, with: Option<&str>, respect_reveals: bool) -> Cow<'a, str> {
    loop {
        let guard = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        let Some(r) = guard.as_ref() else {
            return Cow::Borrowed(text);
        };
        if r.short_built == r.short.len() {
            return replace_with(r, text, with, respect_reveals);
        }
        drop(guard);
        // Short secrets were registered since the automaton was built.
        let mut guard = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = guard.as_mut() {
            let pats: Vec<&str> = r.short.iter().map(|&i| &*r.secrets[i]).collect();
            r.short_ac = AhoCorasick::new(pats).ok();
            r.short_built = r.short.len();
        }
    }
}

fn replace_with<'a>(
    r: &Registry,
    text: &'a str,
    with: Option<&str>,
    respect_reveals: bool,
) -> Cow<'a, str> {
    let mut found = spans(r, text, respect_reveals, true);
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        // A secret folded across lines (or split by spaces) is found in the
        // text without its whitespace, and redacted with what splits it.
        // `at`: each byte of `compact` → its byte in `text`.
        let mut compact = String::with_capacity(text.len());
        let mut at = Vec::with_capacity(text.len());
        for (i, c) in text.char_indices() {
            if !c.is_ascii_whitespace() {
                compact.push(c);
                at.extend(i..i + c.len_utf8());
            }
        }
        // Only by a 16-character window: a short secret found whole in
        // words run together would redact innocent text ("release 2024").
        let folded = spans(r, &compact, respect_reveals, false);
        if !folded.is_empty() {
            found.extend(
                folded
                    .into_iter()
                    .map(|(s, e, i)| (at[s], at[e - 1] + 1, i)),
            );
            found.sort();
            found = merge(found);
        }
    }
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e, idx) in found {
        out.push_str(&text[at..s]);
        match with {
            Some(w) => out.push_str(w),
            None => out
                .push_str(&crate::secret::SecretString::new(r.secrets[idx].to_string()).redacted()),
        }
        at = e;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

fn floor(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// `text` with every registered secret (or a long part of one) replaced by
/// its redacted form. For text from outside: servers, commands.
pub fn clean(text: &str) -> Cow<'_, str> {
    replace(text, None, false)
}

/// `text` with every registered secret replaced by `with`.
pub fn clean_with<'a>(text: &'a str, with: &str) -> Cow<'a, str> {
    replace(text, Some(with), false)
}

/// For what a script itself prints: every known secret is redacted except
/// those the script revealed on purpose (`reveal()`).
pub fn clean_output(text: &str) -> Cow<'_, str> {
    replace(text, None, true)
}

/// [`clean_output`] over every string (and key) of a JSON value: a script's
/// result as its JSON document carries it.
pub fn clean_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(clean_output(&s).into_owned()),
        Value::Array(a) => Value::Array(a.into_iter().map(clean_json).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (clean_output(&k).into_owned(), clean_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// [`clean`] into an owned string.
pub fn cleaned(text: &str) -> String {
    clean(text).into_owned()
}

/// An error's text with the text of each cause it does not already hold,
/// `: `-separated (libraries often repeat a cause in their own message).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
