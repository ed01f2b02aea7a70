//! The loopback scenario the examples share: a name's two addresses, one black-holed and
//! one live, on the same port.

use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// The embedded peers: a black-holed `[::1]:P` and a live `127.0.0.1:P`.
pub(crate) struct Scenario {
    pub(crate) hole: SocketAddr,
    pub(crate) live: SocketAddr,
    _listener: TcpListener,
    _hole: Socket,
    _fillers: Vec<TcpStream>,
}

impl Scenario {
    pub(crate) async fn start() -> std::io::Result<Scenario> {
        let mut last_err = None;
        for _ in 0..20 {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let live = listener.local_addr()?;
            let hole_addr: SocketAddr = format!("[::1]:{}", live.port()).parse().unwrap();
            match black_hole(hole_addr).await {
                Ok((hole, fillers)) => {
                    return Ok(Scenario {
                        hole: hole_addr,
                        live,
                        _listener: listener,
                        _hole: hole,
                        _fillers: fillers,
                    })
                }
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.expect("tried at least once"))
    }
}

/// A listener with `listen(0)` whose accept queue is then filled, so the kernel drops
/// every further SYN.
async fn black_hole(addr: SocketAddr) -> std::io::Result<(Socket, Vec<TcpStream>)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.bind(&addr.into())?;
    socket.listen(0)?;
    let mut fillers = Vec::new();
    while let Ok(filler) =
        tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await
    {
        fillers.push(filler?);
    }
    Ok((socket, fillers))
}
