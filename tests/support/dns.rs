//! A scriptable DNS server on 127.0.0.1 (UDP and TCP) for integration tests.
//!
//! It never contacts anything: it only answers from the entries a test inserts.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// How the server replies to questions for one name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reply {
    /// Answer normally with the configured records (NODATA if none of the asked type).
    #[default]
    Answer,
    /// Reply with NXDOMAIN.
    NxDomain,
    /// Reply with SERVFAIL.
    ServFail,
    /// Reply with REFUSED.
    Refused,
    /// Never reply (the question is still counted).
    Silent,
    /// Answer with the query id plus one.
    WrongId,
    /// Send a few bytes that are not a DNS message.
    Garbage,
    /// Over UDP reply with TC=1 and no answers; over TCP answer normally.
    Truncated,
    /// Answer, but with question and answer names replaced by `wrong.example.`.
    WrongName,
}

/// What the server answers for one name.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    a: Vec<Ipv4Addr>,
    aaaa: Vec<Ipv6Addr>,
    a_delay: Duration,
    aaaa_delay: Duration,
    reply: Reply,
    ttl: u32,
}

impl Entry {
    /// A normal answer with no records, no delays and TTL 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an A record; panics if `ip` is not an IPv4 address.
    pub fn a(mut self, ip: &str) -> Self {
        self.a.push(ip.parse().expect("bad IPv4 address in test"));
        self
    }

    /// Adds an AAAA record; panics if `ip` is not an IPv6 address.
    pub fn aaaa(mut self, ip: &str) -> Self {
        self.aaaa
            .push(ip.parse().expect("bad IPv6 address in test"));
        self
    }

    /// Waits `d` before replying to A questions.
    pub fn a_delay(mut self, d: Duration) -> Self {
        self.a_delay = d;
        self
    }

    /// Waits `d` before replying to AAAA questions.
    pub fn aaaa_delay(mut self, d: Duration) -> Self {
        self.aaaa_delay = d;
        self
    }

    /// Sets how the server replies (default [`Reply::Answer`]).
    pub fn reply(mut self, r: Reply) -> Self {
        self.reply = r;
        self
    }

    /// Sets the TTL of the answer records (default 0).
    pub fn ttl(mut self, secs: u32) -> Self {
        self.ttl = secs;
        self
    }

    /// The records of type `rtype` for `name`.
    fn records(&self, name: &Name, rtype: RecordType) -> Vec<Record> {
        let data: Vec<RData> = match rtype {
            RecordType::A => self.a.iter().map(|ip| RData::A(A(*ip))).collect(),
            RecordType::AAAA => self.aaaa.iter().map(|ip| RData::AAAA(AAAA(*ip))).collect(),
            _ => Vec::new(),
        };
        data.into_iter()
            .map(|d| Record::from_rdata(name.clone(), self.ttl, d))
            .collect()
    }
}

/// Entries and question counters shared by the server tasks.
#[derive(Debug, Default)]
struct State {
    entries: Mutex<HashMap<String, Entry>>,
    /// Questions received, keyed by (normalized name, record type).
    counts: Mutex<HashMap<(String, String), usize>>,
}

/// Lower-cases a name and strips its trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A few random-looking bytes, too short to be a DNS message.
fn garbage(seed: u16) -> Vec<u8> {
    let [hi, lo] = seed.to_be_bytes();
    vec![0x5a, hi ^ 0xc3, 0x17, lo ^ 0x9d, 0x42, 0xe7, 0x0f]
}

impl State {
    /// Counts the questions of `buf` and works out the reply: how long to wait
    /// and the bytes to send. `None` means send nothing.
    fn handle(&self, buf: &[u8], tcp: bool) -> Option<(Duration, Vec<u8>)> {
        let req = Message::from_vec(buf).ok()?;
        if req.message_type != MessageType::Query {
            return None;
        }
        {
            let mut counts = self.counts.lock().unwrap();
            for q in &req.queries {
                let key = (normalize(&q.name.to_ascii()), q.query_type.to_string());
                *counts.entry(key).or_default() += 1;
            }
        }
        let mut resp = Message::response(req.id, req.op_code);
        resp.metadata.recursion_desired = req.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.metadata.authoritative = true;
        if req.edns.is_some() {
            resp.edns = Some(Edns::new());
        }
        let q = req.queries.first()?.clone();
        let name = normalize(&q.name.to_ascii());
        resp.add_query(q.clone());
        let entry = self.entries.lock().unwrap().get(&name).cloned();
        let Some(entry) = entry else {
            resp.metadata.response_code = ResponseCode::NXDomain;
            return Some((Duration::ZERO, resp.to_vec().ok()?));
        };
        let delay = match q.query_type {
            RecordType::A => entry.a_delay,
            RecordType::AAAA => entry.aaaa_delay,
            _ => Duration::ZERO,
        };
        match entry.reply {
            Reply::Silent => return None,
            Reply::Garbage => return Some((delay, garbage(req.id))),
            Reply::NxDomain => resp.metadata.response_code = ResponseCode::NXDomain,
            Reply::ServFail => resp.metadata.response_code = ResponseCode::ServFail,
            Reply::Refused => resp.metadata.response_code = ResponseCode::Refused,
            Reply::Truncated if !tcp => resp.metadata.truncation = true,
            Reply::WrongName => {
                let wrong = Name::from_ascii("wrong.example.").expect("valid name");
                resp.answers = entry.records(&wrong, q.query_type);
                resp.queries[0].name = wrong;
            }
            Reply::WrongId | Reply::Answer | Reply::Truncated => {
                resp.answers = entry.records(&q.name, q.query_type);
            }
        }
        if entry.reply == Reply::WrongId {
            resp.metadata.id = req.id.wrapping_add(1);
        }
        Some((delay, resp.to_vec().expect("encode DNS response")))
    }
}

/// A DNS server on 127.0.0.1, serving UDP and TCP on the same port.
///
/// Its tasks run on the runtime that called [`DnsServer::start`]; dropping
/// the server aborts them.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Binds UDP on an ephemeral 127.0.0.1 port and TCP on the same port, then serves both.
    pub async fn start() -> DnsServer {
        for _ in 0..20 {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .expect("bind UDP on 127.0.0.1");
            let addr = udp.local_addr().expect("UDP local address");
            let Ok(tcp) = TcpListener::bind(addr).await else {
                continue;
            };
            let state = Arc::new(State::default());
            let tasks = vec![
                tokio::spawn(serve_udp(udp, state.clone())),
                tokio::spawn(serve_tcp(tcp, state.clone())),
            ];
            return DnsServer { addr, state, tasks };
        }
        panic!("could not bind UDP and TCP on the same 127.0.0.1 port");
    }

    /// The address (UDP and TCP) the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A resolver that asks only this server, with hickory's default timeouts.
    pub fn resolver(&self) -> nettrace::HickoryResolver {
        nettrace::HickoryResolver::with_name_servers(&[self.addr])
    }

    /// Sets what the server answers for `name` (case-insensitive, trailing dot optional).
    pub fn insert(&self, name: &str, entry: Entry) {
        let mut entries = self.state.entries.lock().unwrap();
        entries.insert(normalize(name), entry);
    }

    /// Total questions received over UDP and TCP, for all names and types.
    pub fn questions(&self) -> usize {
        self.state.counts.lock().unwrap().values().sum()
    }

    /// Questions received for `name` with record type `rtype` (`"A"`, `"AAAA"`, ...).
    pub fn questions_for(&self, name: &str, rtype: &str) -> usize {
        let key = (normalize(name), rtype.to_ascii_uppercase());
        let counts = self.state.counts.lock().unwrap();
        counts.get(&key).copied().unwrap_or(0)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Receives UDP queries; each reply is sent from its own task.
async fn serve_udp(sock: UdpSocket, state: Arc<State>) {
    let sock = Arc::new(sock);
    // Owned here so that aborting this task also aborts pending replies.
    let mut replies = JoinSet::new();
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        while replies.try_join_next().is_some() {}
        if let Some((delay, bytes)) = state.handle(&buf[..n], false) {
            let sock = sock.clone();
            replies.spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = sock.send_to(&bytes, peer).await;
            });
        }
    }
}

/// Accepts TCP connections; each is served by its own task.
async fn serve_tcp(listener: TcpListener, state: Arc<State>) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while conns.try_join_next().is_some() {}
        conns.spawn(serve_conn(stream, state.clone()));
    }
}

/// Serves length-prefixed queries on one TCP connection until the peer closes it.
async fn serve_conn(stream: TcpStream, state: Arc<State>) {
    let (mut rd, wr) = stream.into_split();
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let mut replies = JoinSet::new();
    while let Ok(len) = rd.read_u16().await {
        let mut buf = vec![0u8; usize::from(len)];
        if rd.read_exact(&mut buf).await.is_err() {
            break;
        }
        while replies.try_join_next().is_some() {}
        if let Some((delay, mut bytes)) = state.handle(&buf, true) {
            let wr = wr.clone();
            replies.spawn(async move {
                tokio::time::sleep(delay).await;
                let len = u16::try_from(bytes.len()).expect("DNS reply fits in 64 KiB");
                bytes.splice(0..0, len.to_be_bytes());
                let _ = wr.lock().await.write_all(&bytes).await;
            });
        }
    }
    // Let pending replies go out before the connection is closed.
    while replies.join_next().await.is_some() {}
}

/// A DNS server that answers `name` with `127.0.0.1` (and no IPv6 address), each family
/// after `delay`: long enough for concurrent lookups of it to share one query.
pub async fn slow_v4_name(name: &str, delay: Duration) -> DnsServer {
    let server = DnsServer::start().await;
    server.insert(
        name,
        Entry::new().a("127.0.0.1").a_delay(delay).aaaa_delay(delay),
    );
    server
}

/// A resolver that never answers.
pub struct Never;

impl nettrace::Resolve for Never {
    fn resolve(&self, _host: &str) -> nettrace::Resolving {
        Box::pin(std::future::pending())
    }
}

/// A dialer whose resolver answers `name` with the addresses of `addrs`, in order.
pub fn static_dialer(name: &str, addrs: &[SocketAddr]) -> nettrace::Dialer {
    nettrace::Dialer::builder()
        .resolver(nettrace::StaticResolver::new().insert(name, addrs.iter().map(|a| a.ip())))
        .build()
}

#[cfg(test)]
mod selftest {
    use super::*;
    use hickory_proto::op::{OpCode, Query};
    use std::time::Instant;

    const QA: RecordType = RecordType::A;
    const QAAAA: RecordType = RecordType::AAAA;

    /// A hand-built query with RD set.
    fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        m.to_vec().unwrap()
    }

    /// Asks one question over UDP; `None` if there is no reply within a second.
    async fn ask(to: SocketAddr, id: u16, name: &str, rtype: RecordType) -> Option<Message> {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        sock.send_to(&query(id, name, rtype), to).await.unwrap();
        let mut buf = [0u8; 4096];
        let recv = sock.recv_from(&mut buf);
        let reply = tokio::time::timeout(Duration::from_secs(1), recv).await;
        let (n, _) = reply.ok()?.unwrap();
        Some(Message::from_vec(&buf[..n]).unwrap())
    }

    fn ips(m: &Message) -> Vec<String> {
        m.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[tokio::test]
    async fn answers_nxdomain_nodata_and_counts() {
        let server = DnsServer::start().await;
        let to = server.addr();
        server.insert(
            "Example.COM.",
            Entry::new().a("127.0.2.1").a("127.0.2.2").ttl(30),
        );

        let m = ask(to, 7, "example.com.", QA).await.unwrap();
        assert_eq!((m.id, m.message_type), (7, MessageType::Response));
        assert_eq!(m.response_code, ResponseCode::NoError);
        assert!(m.authoritative && m.recursion_available && m.recursion_desired);
        assert_eq!(m.queries[0].query_type, QA);
        assert_eq!(ips(&m), ["127.0.2.1", "127.0.2.2"]);
        assert!(m.answers.iter().all(|r| r.ttl == 30));

        let m = ask(to, 8, "EXAMPLE.com", QAAAA).await.unwrap();
        assert_eq!(m.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());

        let m = ask(to, 9, "missing.test.", QA).await.unwrap();
        assert_eq!(m.response_code, ResponseCode::NXDomain);

        assert_eq!(server.questions_for("example.com", "A"), 1);
        assert_eq!(server.questions_for("EXAMPLE.com.", "aaaa"), 1);
        assert_eq!(server.questions_for("missing.test", "A"), 1);
        assert_eq!(server.questions(), 3);
    }

    #[tokio::test]
    async fn truncated_over_udp_full_over_tcp() {
        let server = DnsServer::start().await;
        let entry = Entry::new().a("127.0.2.3").aaaa("::1");
        server.insert("big.test", entry.reply(Reply::Truncated));

        let m = ask(server.addr(), 3, "big.test.", QA).await.unwrap();
        assert!(m.truncation && m.answers.is_empty());

        // Two queries on one TCP connection.
        let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
        for (id, rtype, want) in [(4, QA, "127.0.2.3"), (5, QAAAA, "::1")] {
            let mut q = query(id, "big.test.", rtype);
            q.splice(0..0, (q.len() as u16).to_be_bytes());
            tcp.write_all(&q).await.unwrap();
            let mut buf = vec![0u8; usize::from(tcp.read_u16().await.unwrap())];
            tcp.read_exact(&mut buf).await.unwrap();
            let m = Message::from_vec(&buf).unwrap();
            assert_eq!((m.id, m.truncation), (id, false));
            assert_eq!(ips(&m), [want]);
        }
        assert_eq!(server.questions_for("big.test", "A"), 2);
        assert_eq!(server.questions(), 3);
    }

    #[tokio::test]
    async fn delays_and_failure_modes() {
        let server = DnsServer::start().await;
        let to = server.addr();
        let slow = Entry::new().a("127.0.2.4").aaaa("::1");
        server.insert("slow.test", slow.a_delay(Duration::from_millis(300)));
        server.insert("id.test", Entry::new().a("127.0.2.5").reply(Reply::WrongId));
        server.insert("silent.test", Entry::new().reply(Reply::Silent));

        let start = Instant::now();
        let timed = |m: Option<Message>| (ips(&m.unwrap()), start.elapsed());
        let (fast, slow) = tokio::join!(
            async { timed(ask(to, 10, "slow.test.", QAAAA).await) },
            async { timed(ask(to, 11, "slow.test.", QA).await) },
        );
        assert_eq!(fast.0, ["::1"]);
        assert_eq!(slow.0, ["127.0.2.4"]);
        assert!(fast.1 < Duration::from_millis(250), "AAAA waited for A");
        assert!(slow.1 >= Duration::from_millis(300));

        let m = ask(to, u16::MAX, "id.test.", QA).await.unwrap();
        assert_eq!(m.id, 0);
        assert!(ask(to, 12, "silent.test.", QA).await.is_none());
        assert_eq!(server.questions_for("silent.test", "A"), 1);
        assert_eq!(server.questions(), 4);
    }
}
