//! How a student finds and trusts a classroom (PROTOCOL.md §8): join links, the mDNS TXT record, and the
//! certificate fingerprint format.
//!
//! Parsing is done by hand, without a URL library, so that this crate stays serde-only and so that every
//! parser here is small enough to fuzz: a link comes from a QR code or a paste, a TXT record from anyone
//! on the network, and neither may panic or be misread.

use crate::{DEFAULT_PORT, WS_PATH};

/// The DNS-SD service type Lectern servers announce.
pub const SERVICE_TYPE: &str = "_lectern._tcp.local.";
/// The longest lesson title a TXT record carries, in bytes.
pub const MAX_TITLE_BYTES: usize = 64;

/// A join link, a wss:// URL or a `HOST:PORT` that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError(pub String);

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LinkError {}

/// Whether `s` is a certificate fingerprint: base64url without padding of a SHA-256 digest (43
/// characters, the last of which carries only 2 of its 6 bits).
pub fn is_fingerprint(s: &str) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    b.len() == 43
        && b.iter().all(|c| ALPHABET.contains(c))
        && b.last().and_then(|c| ALPHABET.iter().position(|a| a == c)).is_some_and(|i| i % 4 == 0)
}

/// Where a join link points: the WebSocket URL, the join code and the pinned fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinLink {
    /// `wss://HOST:PORT/v1/ws`.
    pub ws_url: String,
    /// Join code from the fragment, if any.
    pub code: Option<String>,
    /// Fingerprint from the fragment, if any.
    pub fingerprint: Option<String>,
    /// Through a relay (PROTOCOL-ADDITIONS.md, section E): the room on the teacher's server.
    pub room: Option<String>,
    /// Through a relay: the teacher's public key every state must be signed with.
    pub pk: Option<String>,
}

impl JoinLink {
    /// Parses `https://HOST:PORT/join#code=…&fp=…`, `wss://HOST:PORT/v1/ws` or `HOST:PORT`. A missing
    /// port means 7443; the path is ignored (every server's socket is at `/v1/ws`).
    pub fn parse(input: &str) -> Result<JoinLink, LinkError> {
        let bad = |why: &str| LinkError(format!("bad address {input:?}: {why}"));
        let input = input.trim();
        let rest = match input.split_once("://") {
            Some((scheme, rest)) => {
                if !matches!(scheme.to_ascii_lowercase().as_str(), "https" | "wss" | "http" | "ws") {
                    return Err(bad("the link must start with https:// or wss://"));
                }
                rest
            }
            None => input,
        };
        let (before_fragment, fragment) = match rest.split_once('#') {
            Some((a, f)) => (a, Some(f)),
            None => (rest, None),
        };
        let authority = before_fragment.split(['/', '?']).next().unwrap_or_default();
        let (host, port) = split_authority(authority).map_err(|why| bad(&why))?;
        let mut link =
            JoinLink { ws_url: String::new(), code: None, fingerprint: None, room: None, pk: None };
        for pair in fragment.unwrap_or_default().split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "code" => link.code = Some(percent_decode(v)),
                "fp" => link.fingerprint = Some(percent_decode(v)),
                "room" => link.room = Some(percent_decode(v)),
                "pk" => link.pk = Some(percent_decode(v)),
                _ => {}
            }
        }
        // A relay faces the internet on HTTPS's own port; a classroom server listens on 7443.
        let explicit =
            !authority.ends_with(']') && authority.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty());
        let port = if link.room.is_some() && !explicit { 443 } else { port };
        link.ws_url = format!("wss://{host}:{port}{WS_PATH}");
        Ok(link)
    }

    /// The room and the teacher's key of a link through a relay (section E), when it names both and
    /// the key is one (32 bytes in base64url: 43 characters, as a fingerprint is). Only such a link
    /// may pin no fingerprint: its states are checked against the key whatever serves them.
    pub fn relay(&self) -> Option<(&str, &str)> {
        let room = self.room.as_deref().filter(|r| !r.is_empty() && r.len() <= 128)?;
        let pk = self.pk.as_deref().filter(|pk| is_fingerprint(pk))?;
        Some((room, pk))
    }

    /// The join link a person scans or clicks: `https://HOST:PORT/join#code=…&fp=…&pk=…` (the
    /// fragment never reaches a server log; `pk`, the teacher's signing key, travels with the
    /// fingerprint). `base` is `https://HOST:PORT`.
    pub fn format(base: &str, code: &str, fingerprint: &str, pk: &str) -> String {
        format!("{base}/join#code={code}&fp={fingerprint}&pk={pk}")
    }
}

/// Splits `host[:port]` or `[v6][:port]`; the host comes back bracketed when it is IPv6.
fn split_authority(authority: &str) -> Result<(String, u16), String> {
    if authority.contains('@') {
        return Err("a join link carries no user name".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("unclosed [ in the address")?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err("not an IPv6 address between [ ]".into());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after ]")?),
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_') {
            return Err("the host may hold only letters, digits, '.', '-' and '_'".into());
        }
        (host.to_string(), port)
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or("the port must be 1 to 65535")?,
    };
    Ok((host, port))
}

/// Decodes `%XX` escapes and `+` (form encoding); a malformed escape is kept as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A string cut to at most `max` bytes at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The TXT record of an mDNS announcement (§8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txt {
    /// Certificate fingerprint (`fp`).
    pub fingerprint: String,
    /// Room id (`room`).
    pub room: String,
    /// Lesson title (`title`), cut to 64 bytes when written.
    pub title: String,
    /// WebSocket path (`path`).
    pub path: String,
    /// The teacher's server's signing key (`pk`, PROTOCOL-ADDITIONS.md section E), if announced.
    pub pk: Option<String>,
}

impl Txt {
    /// The key-value pairs to announce, `v=1` first.
    pub fn pairs(&self) -> Vec<(String, String)> {
        vec![
            ("v".into(), "1".into()),
            ("fp".into(), self.fingerprint.clone()),
            ("room".into(), self.room.clone()),
            ("title".into(), cut(&self.title, MAX_TITLE_BYTES).to_string()),
            ("path".into(), self.path.clone()),
        ]
        .into_iter()
        .chain(self.pk.clone().map(|pk| ("pk".into(), pk)))
        .collect()
    }

    /// Reads a record found on the network; `None` unless it is v1 with a fingerprint a client can pin.
    /// A missing `path` means `/v1/ws`; a path that is not absolute is refused.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Option<Txt> {
        if get("v").as_deref() != Some("1") {
            return None;
        }
        let fingerprint = get("fp").filter(|fp| is_fingerprint(fp))?;
        let path = get("path").filter(|p| !p.is_empty()).unwrap_or_else(|| WS_PATH.into());
        if !path.starts_with('/') || path.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return None;
        }
        let title = get("title").unwrap_or_default();
        Some(Txt {
            fingerprint,
            room: get("room").unwrap_or_default(),
            title: cut(&title, MAX_TITLE_BYTES).into(),
            path,
            // A key is 32 bytes in base64url: 43 characters, as a fingerprint is.
            pk: get("pk").filter(|pk| is_fingerprint(pk)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "q3G8xYV0bq5p0x2WwF7b9j1s9Q8yTn0m3cX4rL2aZkA";

    #[test]
    fn a_join_link_carries_code_and_fingerprint() {
        let l = JoinLink::parse(&format!("https://192.168.1.20:7443/join#code=482913&fp={FP}")).unwrap();
        assert_eq!(l.ws_url, "wss://192.168.1.20:7443/v1/ws");
        assert_eq!(l.code.as_deref(), Some("482913"));
        assert_eq!(l.fingerprint.as_deref(), Some(FP));
        assert_eq!(JoinLink::parse("localhost:9000").unwrap().ws_url, "wss://localhost:9000/v1/ws");
        assert_eq!(JoinLink::parse("classroom.local").unwrap().ws_url, "wss://classroom.local:7443/v1/ws");
        assert_eq!(JoinLink::parse("wss://[fd00::2]:9/v1/ws").unwrap().ws_url, "wss://[fd00::2]:9/v1/ws");
    }

    #[test]
    fn a_relay_link_names_the_room_and_the_teachers_key_and_means_port_443() {
        let pk = "6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw";
        let l = JoinLink::parse(&format!("https://relay.example/join#room=r1&code=482913&fp={FP}&pk={pk}"))
            .unwrap();
        assert_eq!(l.ws_url, "wss://relay.example:443/v1/ws");
        assert_eq!((l.room.as_deref(), l.pk.as_deref()), (Some("r1"), Some(pk)));
        let l = JoinLink::parse("https://relay.example:8443/join#room=r1").unwrap();
        assert_eq!(l.ws_url, "wss://relay.example:8443/v1/ws");
        assert_eq!(
            JoinLink::parse("https://[fd00::2]/join#room=r1").unwrap().ws_url,
            "wss://[fd00::2]:443/v1/ws"
        );
    }

    #[test]
    fn a_formatted_link_parses_back() {
        let link = JoinLink::format("https://[fd00::2]:7443", "482913", FP, FP);
        let l = JoinLink::parse(&link).unwrap();
        assert_eq!((l.ws_url.as_str(), l.code.as_deref()), ("wss://[fd00::2]:7443/v1/ws", Some("482913")));
    }

    #[test]
    fn hostile_links_are_refused_not_misread() {
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://a@b:1",
            "https://[::1",
            "https://h:0",
            "https://h:99999",
            "https://h o",
        ] {
            assert!(JoinLink::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(JoinLink::parse("h#code=%4").unwrap().code.as_deref(), Some("%4"));
        assert_eq!(JoinLink::parse("h#code=%34%38").unwrap().code.as_deref(), Some("48"));
        assert_eq!(
            JoinLink::parse("h#code=%+5").unwrap().code.as_deref(),
            Some("% 5"),
            "a sign is not a hex digit"
        );
    }

    #[test]
    fn fingerprints_are_43_base64url_characters_of_a_sha256() {
        assert!(is_fingerprint(FP));
        assert!(is_fingerprint(&format!("-{}", &FP[1..])));
        assert!(!is_fingerprint(&FP[1..]));
        assert!(!is_fingerprint(&format!("{}B", &FP[..42])), "the last character carries 2 bits only");
        assert!(!is_fingerprint(&format!("{}=", &FP[..42])));
    }

    #[test]
    fn txt_has_the_protocol_keys_and_reads_back() {
        let t = Txt {
            fingerprint: FP.into(),
            room: "r1".into(),
            title: "ق".repeat(40),
            path: WS_PATH.into(),
            pk: Some(FP.into()),
        };
        let pairs = t.pairs();
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["v", "fp", "room", "title", "path", "pk"]);
        assert_eq!(pairs[3].1.len(), 64);
        let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(Txt::read(get).map(|r| (r.room, r.pk)), Some(("r1".into(), Some(FP.into()))));
        // A key that is not one is not believed; the record still is.
        assert_eq!(
            Txt::read(|k| if k == "pk" { Some("x".into()) } else { get(k) }).map(|r| r.pk),
            Some(None)
        );
        assert!(Txt::read(|k| if k == "v" { Some("2".into()) } else { get(k) }).is_none());
        assert!(Txt::read(|k| if k == "fp" { Some("x".into()) } else { get(k) }).is_none());
    }
}
