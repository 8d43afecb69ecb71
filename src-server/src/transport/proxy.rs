//! PROXY protocol (HAProxy's; v2, the binary form, and v1, the text form nginx's `stream` module
//! and older balancers send), from the load balancers a relay's operator names and only from them:
//! behind a balancer every student's connection comes from the balancer's address, and the
//! per-address limits would see one student. A connection from a named balancer must begin with a
//! header; the client it names is then the connection's address for every limit and log. A v2
//! `LOCAL` header or a v1 `UNKNOWN` one (a balancer's own health check) keeps the balancer's
//! address. A header from any other address is not read: it breaks that connection's TLS
//! handshake, and nothing is believed.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 header's first 12 bytes.
const SIGNATURE: [u8; 12] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

/// The longest address block (and TLVs) taken after the 16 fixed bytes.
const MAX_BLOCK: usize = 512;

/// How long a trusted balancer has to send its header (it sends it at once): a connection that
/// holds a permit without one is cut short.
pub const HEADER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Says a named balancer sent no usable header, at most every 10 s: it is misconfigured, and its
/// students are being turned away.
pub fn warn_misconfigured(peer: SocketAddr, why: &str) {
    static SAID: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if said.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(10)) {
        *said = Some(std::time::Instant::now());
        tracing::warn!(%peer, why, "a load balancer named in proxy_from sent no usable PROXY header; its connection was closed");
    }
}

/// The load balancers whose PROXY headers a relay believes (addresses or CIDR blocks).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// From a list of addresses (`10.0.0.5`) and blocks (`10.0.0.0/24`, `2001:db8::/48`); the
    /// first that is neither, as an error.
    pub fn parse(list: &[String]) -> Result<TrustedProxies, String> {
        let one = |text: &String| {
            let text = text.trim();
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{text:?} is not an address or a CIDR block (10.0.0.0/24)"))
        };
        list.iter().filter(|t| !t.trim().is_empty()).map(one).collect::<Result<_, _>>().map(TrustedProxies)
    }

    /// Whether none is named (PROXY headers are then never read).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a connection from `ip` comes from a named balancer (an IPv4-mapped IPv6 address is
    /// its IPv4 address).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn invalid(why: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.into())
}

/// The longest v1 header, "\r\n" included (the protocol's own bound).
const MAX_V1: usize = 107;

/// Reads the PROXY protocol header (v2, or v1) a trusted balancer at `from` begins its connection
/// with: the client's address, or `from` for a health check's. Anything else is an error, and the
/// connection is closed: a balancer the operator named that sends no header is misconfigured, and
/// guessing would give every student one address again.
pub async fn read_header(
    tcp: &mut (impl AsyncRead + Unpin),
    from: SocketAddr,
) -> std::io::Result<SocketAddr> {
    // Six bytes tell the two apart ("PROXY " and the binary signature's start), and neither header
    // is shorter: nothing of the TLS handshake after it is read here.
    let mut head = [0u8; 6];
    tcp.read_exact(&mut head).await?;
    let client = if &head == b"PROXY " { read_v1(tcp).await? } else { read_v2(tcp, head).await? };
    // A health check is the balancer's own connection.
    let Some(client) = client else { return Ok(from) };
    // No student on the internet is this machine, or no address at all: such a header would
    // escape every per-address limit (this machine's own connections are not counted).
    let ip = client.ip().to_canonical();
    if ip.is_loopback() || ip.is_unspecified() {
        return Err(invalid(format!("a PROXY header naming {ip}")));
    }
    Ok(client)
}

/// The rest of a v1 header (`PROXY TCP4 <client> <relay> <port> <port>\r\n`), read a byte at a
/// time up to its end so that none of the TLS handshake after it is taken: the client, or none for
/// `UNKNOWN` (a health check).
async fn read_v1(tcp: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<SocketAddr>> {
    let mut line = b"PROXY ".to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= MAX_V1 {
            return Err(invalid("a PROXY v1 header longer than 107 bytes"));
        }
        line.push(tcp.read_u8().await?);
    }
    let parsed =
        ppp::v1::Header::try_from(&line[..]).map_err(|e| invalid(format!("PROXY v1 header: {e}")))?;
    Ok(match parsed.addresses {
        ppp::v1::Addresses::Unknown => None,
        ppp::v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
    })
}

/// The rest of a v2 header, whose first six bytes are `head`: the client, or none for `LOCAL` (a
/// health check).
async fn read_v2(tcp: &mut (impl AsyncRead + Unpin), head: [u8; 6]) -> std::io::Result<Option<SocketAddr>> {
    let mut header = vec![0u8; 16];
    header[..6].copy_from_slice(&head);
    tcp.read_exact(&mut header[6..]).await?;
    if header[..12] != SIGNATURE {
        return Err(invalid("no PROXY protocol header"));
    }
    let block = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if block > MAX_BLOCK {
        return Err(invalid(format!("a PROXY header of {block} bytes")));
    }
    header.resize(16 + block, 0);
    tcp.read_exact(&mut header[16..]).await?;
    let parsed = ppp::v2::Header::try_from(&header[..]).map_err(|e| invalid(format!("PROXY header: {e}")))?;
    match (parsed.command, parsed.addresses) {
        (ppp::v2::Command::Local, _) => Ok(None),
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(a)) => {
            Ok(Some(SocketAddr::from((a.source_address, a.source_port))))
        }
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(a)) => {
            Ok(Some(SocketAddr::from((a.source_address, a.source_port))))
        }
        (ppp::v2::Command::Proxy, _) => Err(invalid("a PROXY header with no IP address")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balancers_are_named_by_address_or_block_and_nothing_else_is_trusted() {
        let list = ["10.0.0.0/24".to_string(), "2001:db8::5".into(), " ".into()];
        let trusted = TrustedProxies::parse(&list).unwrap();
        assert!(trusted.trusts("10.0.0.9".parse().unwrap()));
        assert!(trusted.trusts("::ffff:10.0.0.9".parse().unwrap()), "an IPv4-mapped address");
        assert!(trusted.trusts("2001:db8::5".parse().unwrap()));
        assert!(!trusted.trusts("10.0.1.9".parse().unwrap()));
        assert!(!trusted.trusts("2001:db8::6".parse().unwrap()));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["example.org".into()]).unwrap_err().contains("example.org"));
        assert!(TrustedProxies::default().is_empty());
    }

    /// A header, as a balancer writes it, followed by the start of a TLS handshake: what is read,
    /// and what is left for TLS.
    async fn through(bytes: &[u8]) -> (std::io::Result<SocketAddr>, Vec<u8>) {
        let (mut balancer, mut relay) = tokio::io::duplex(4096);
        tokio::io::AsyncWriteExt::write_all(&mut balancer, bytes).await.unwrap();
        drop(balancer);
        let read = read_header(&mut relay, "10.0.0.5:443".parse().unwrap()).await;
        let mut rest = Vec::new();
        relay.read_to_end(&mut rest).await.unwrap();
        (read, rest)
    }

    const HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00];

    #[tokio::test]
    async fn a_v1_header_names_the_student_and_leaves_every_byte_after_it_to_tls() {
        let header = b"PROXY TCP4 203.0.113.7 10.0.0.9 40000 7443\r\n";
        let (read, rest) = through(&[&header[..], HELLO].concat()).await;
        assert_eq!(read.unwrap(), "203.0.113.7:40000".parse().unwrap());
        assert_eq!(rest, HELLO, "the TLS hello is untouched");
        let header = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 7443\r\n";
        assert_eq!(through(header).await.0.unwrap(), "[2001:db8::7]:40000".parse().unwrap());
        // A health check keeps the balancer's address.
        let (read, rest) = through(&[&b"PROXY UNKNOWN\r\n"[..], HELLO].concat()).await;
        assert_eq!((read.unwrap(), rest.as_slice()), ("10.0.0.5:443".parse().unwrap(), HELLO));
    }

    #[tokio::test]
    async fn a_v1_header_that_runs_on_or_names_this_machine_is_refused() {
        // No end within 107 bytes: refused having read no more than that.
        let endless = [&b"PROXY TCP4 "[..], &[b'1'; 200][..]].concat();
        let (read, rest) = through(&endless).await;
        assert!(read.unwrap_err().to_string().contains("107"));
        assert_eq!(rest.len(), endless.len() - 107, "read no further than the longest header");
        assert!(through(b"PROXY TCP4 not an address\r\n").await.0.is_err(), "not a v1 header");
        let this_machine = through(b"PROXY TCP4 127.0.0.1 10.0.0.9 1 7443\r\n").await.0;
        assert!(this_machine.unwrap_err().to_string().contains("127.0.0.1"));
    }

    #[tokio::test]
    async fn a_v2_header_is_still_read_exactly() {
        let mut header = SIGNATURE.to_vec();
        header.extend([0x21, 0x11, 0, 12, 203, 0, 113, 8, 10, 0, 0, 9, 0x9c, 0x41, 0x1d, 0x13]);
        let (read, rest) = through(&[&header[..], HELLO].concat()).await;
        assert_eq!((read.unwrap(), rest.as_slice()), ("203.0.113.8:40001".parse().unwrap(), HELLO));
    }
}
