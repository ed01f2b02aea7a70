//! One connection attempt: a socket2 socket with its options set before `connect`,
//! handed to tokio to wait for the connect to finish.

use std::io;
use std::net::SocketAddr;
use std::task::{ready, Context, Poll};

use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};
use tokio::net::TcpStream;

use super::Options;

/// A connection attempt in flight. Dropping it closes its socket.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) index: usize,
    pub(crate) addr: SocketAddr,
    stream: TcpStream,
}

/// What [`Attempt::open`] made of it.
pub(crate) enum Opened {
    /// The connect is under way.
    Pending(Attempt),
    /// The socket could not be made, set up or connected.
    Failed(io::Error),
}

impl Attempt {
    /// Creates a non-blocking socket for `addr`, sets `options` on it, and starts
    /// connecting. Must be called inside a tokio runtime.
    pub(crate) fn open(index: usize, addr: SocketAddr, options: &Options) -> Opened {
        match connect(addr, options) {
            Ok(stream) => Opened::Pending(Attempt {
                index,
                addr,
                stream,
            }),
            Err(err) => Opened::Failed(err),
        }
    }

    /// Polls for the connect to finish.
    pub(crate) fn poll_connect(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket becomes writable once the connect has finished, one way or the
        // other; the socket error then says which (as tokio's own connect does).
        ready!(self.stream.poll_write_ready(cx))?;
        match self.stream.take_error()? {
            Some(err) => Poll::Ready(Err(err)),
            None => Poll::Ready(Ok(())),
        }
    }

    pub(crate) fn into_stream(self) -> TcpStream {
        self.stream
    }
}

fn connect(addr: SocketAddr, options: &Options) -> io::Result<TcpStream> {
    let socket = new_nonblocking(Domain::for_address(addr))?;
    if options.nodelay {
        socket.set_tcp_nodelay(true)?;
    }
    if let Some(keepalive) = keepalive(options) {
        socket.set_tcp_keepalive(&keepalive)?;
    }
    if let Some(bytes) = options.send_buffer_size {
        socket.set_send_buffer_size(bytes)?;
    }
    if let Some(bytes) = options.recv_buffer_size {
        // Before connect: the window scale is agreed in the handshake.
        socket.set_recv_buffer_size(bytes)?;
    }
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    if let Some(timeout) = options.tcp_user_timeout {
        socket.set_tcp_user_timeout(Some(timeout))?;
    }
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    if let Some(mark) = options.mark {
        // Needs CAP_NET_ADMIN; without it this fails with EPERM, failing the attempt.
        socket.set_mark(mark)?;
    }
    if options.reuse_address {
        // Must come before bind to have any effect.
        socket.set_reuse_address(true)?;
    }
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    if let Some(device) = &options.bind_device {
        socket.bind_device(Some(device.as_bytes()))?;
    }
    if let Some(local) = options.local.for_dest(addr) {
        socket.bind(&SockAddr::from(local))?;
    }
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(err) if in_progress(&err) => {}
        Err(err) => return Err(err),
    }
    TcpStream::from_std(std::net::TcpStream::from(socket))
}

/// The keepalive settings, when any is set: as hyper-util's `TcpKeepaliveConfig`, an
/// interval or a retry count alone turns keepalive on, with the system's idle time. One
/// the platform lacks is left out, and alone does not turn keepalive on.
fn keepalive(options: &Options) -> Option<TcpKeepalive> {
    let mut keepalive = TcpKeepalive::new();
    let mut any = false;
    if let Some(idle) = options.keepalive {
        keepalive = keepalive.with_time(idle);
        any = true;
    }
    #[cfg(any(
        target_os = "android",
        target_os = "dragonfly",
        target_os = "freebsd",
        target_os = "fuchsia",
        target_os = "illumos",
        target_os = "ios",
        target_os = "linux",
        target_os = "macos",
        target_os = "netbsd",
        target_os = "tvos",
        target_os = "visionos",
        target_os = "watchos",
        target_os = "windows",
    ))]
    if let Some(interval) = options.keepalive_interval {
        keepalive = keepalive.with_interval(interval);
        any = true;
    }
    #[cfg(any(
        target_os = "android",
        target_os = "dragonfly",
        target_os = "freebsd",
        target_os = "fuchsia",
        target_os = "illumos",
        target_os = "ios",
        target_os = "linux",
        target_os = "macos",
        target_os = "netbsd",
        target_os = "tvos",
        target_os = "visionos",
        target_os = "watchos",
    ))]
    if let Some(retries) = options.keepalive_retries {
        keepalive = keepalive.with_retries(retries);
        any = true;
    }
    any.then_some(keepalive)
}

/// A non-blocking TCP socket, in one system call where the platform allows it (as mio
/// does), so a dial costs no more system calls than tokio's own connect.
#[cfg(any(
    target_os = "android",
    target_os = "freebsd",
    target_os = "fuchsia",
    target_os = "linux"
))]
fn new_nonblocking(domain: Domain) -> io::Result<Socket> {
    Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))
}

#[cfg(not(any(
    target_os = "android",
    target_os = "freebsd",
    target_os = "fuchsia",
    target_os = "linux"
)))]
fn new_nonblocking(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn in_progress(err: &io::Error) -> bool {
    #[cfg(unix)]
    if err.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    err.kind() == io::ErrorKind::WouldBlock
}
